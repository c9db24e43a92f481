"""Prototype sentences the extractor compares clauses with, written by hand for this project.

Why: a cue phrase alone misfires ("I love this answer, now shorten it"); the embedding of a clause tells
whether it reads like a person describing themself or like a task for the assistant. These prototypes were
written from scratch and are deliberately generic; none is taken from an evaluation set, so they cannot leak
the gold answers of PrefEval into the score.
"""

from __future__ import annotations

PREFERENCE_PROTOTYPES: tuple[str, ...] = (
    "I prefer window seats when I fly.",
    "I really enjoy spicy Thai food.",
    "I can't stand loud crowded bars.",
    "I'm allergic to nuts, so I have to be careful.",
    "My whole family eats a vegetarian diet.",
    "I get motion sick on long bus rides.",
    "I'm terrified of deep water.",
    "I tend to avoid anything with a lot of sugar.",
    "I'm not a fan of horror films.",
    "I always pick quiet places to stay, away from the party scene.",
    "Hands-on workshops work much better for me than lectures.",
    "I'd rather work from home than commute to an office.",
    "I only buy second-hand clothes for ethical reasons.",
    "I have bad knees, so long hikes are hard for me.",
    "I love listening to jazz while I cook.",
    "I never drink alcohol.",
    "Minimalist design with neutral colours is my style.",
    "I have no interest in reality TV.",
    "I usually take the train instead of flying.",
    "Our dog is very anxious around other dogs.",
    "I find it hard to focus in open-plan offices.",
    "Being eco-friendly matters a lot to me.",
    "I stay away from fast fashion brands.",
    "I'm a morning person and like to work out early.",
    # who the user is: the facts people tell about themselves
    "I work as an electrician for the city.",
    "I'm a retired postal worker.",
    "I grew up near the coast and still live there.",
    "I have two daughters and a stepson.",
    "My brother is a pilot and my mom teaches piano.",
    "I have a parrot named Kiwi.",
    "I hope to become an architect one day.",
    "I play the cello in a community orchestra.",
    "I'm divorced and live alone.",
    "I study economics at a state university.",
    "I'm 29 years old.",
    "I drive an old pickup truck.",
)

TASK_PROTOTYPES: tuple[str, ...] = (
    "Can you recommend a good book?",
    "Write a Python function that sorts a list.",
    "What is the capital of Australia?",
    "Please summarise this article in three bullet points.",
    "Explain how photosynthesis works.",
    "Fix the bug in this code.",
    "Translate this paragraph into French.",
    "Thanks, that was really helpful!",
    "That sounds great, I'll check it out.",
    "I'm working on a report for my manager.",
    "I have a meeting tomorrow morning.",
    "My code throws an error when I run it.",
    "I just finished my shift at the hospital.",
    "I'm planning a trip to Spain next month.",
    "Do you have any tips for managing time?",
    "Make it shorter and more formal.",
    "Is this statement true or false?",
    "I'm thinking about learning to paint.",
    "Generate ten names for a coffee shop.",
    "I tried that but it still doesn't work.",
    "Give me an example of a for loop.",
    "We moved to a new city last year.",
)
