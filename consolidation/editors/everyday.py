"""Everyday chat questions that no preference edit should change the answer to.

Written for this project: unlike the preference questions, and not taken from NaturalQuestions, whose
questions are the locality probe every bench scores. The gradient editors' locality anchor reads the first
24 (`anchor.ANCHOR_QUESTIONS`); ROME's joint solve can hold the module's output at all of them
(`RomeConfig.held_questions`). The second half is what a served chat also holds besides trivia: requests,
code, other languages, advice.
"""

from __future__ import annotations

EVERYDAY_QUESTIONS = (
    "How do I boil an egg?",
    "What is two plus two?",
    "Write one sentence about the weather.",
    "Who wrote Romeo and Juliet?",
    "Translate 'thank you' into French.",
    "What colour is the sky on a clear day?",
    "Who painted the ceiling of the Sistine Chapel?",
    "When did the first person walk on the moon?",
    "Where is the Eiffel Tower?",
    "How many legs does a spider have?",
    "What is the capital city of Canada?",
    "Who discovered penicillin?",
    "Which planet is closest to the sun?",
    "What does a thermometer measure?",
    "Name a famous river in Egypt.",
    "How many days are there in a leap year?",
    "Who was the first president of the United States?",
    "What language is spoken in Brazil?",
    "What is the boiling point of water in Celsius?",
    "Explain what photosynthesis is in one sentence.",
    "Which ocean is the largest?",
    "Who invented the telephone?",
    "What year did the Second World War end?",
    "Give me a synonym for happy.",
    # requests, code, other languages, advice
    "Can you summarise the plot of Cinderella in two sentences?",
    "Write a Python function that returns the largest number in a list.",
    "What does the git command 'git stash' do?",
    "How do I centre a div with CSS?",
    "Explain the difference between a list and a tuple in Python.",
    "¿Cuál es la capital de Argentina?",
    "Wie spät ist es in Tokio, wenn es in Berlin Mittag ist?",
    "Quelle est la différence entre 'tu' et 'vous' ?",
    "How can I get better sleep when I work night shifts?",
    "What should I pack for a three-day hiking trip?",
    "Is it safe to leave cooked rice out overnight?",
    "Give me three tips for a job interview.",
    "How do I convert 70 degrees Fahrenheit to Celsius?",
    "What is the square root of 144?",
    "Why do leaves change colour in autumn?",
    "How does a bicycle stay upright while moving?",
    "Write a short thank-you note to a colleague who helped me move house.",
    "What are the rules of chess for castling?",
    "Recommend a good way to learn to play the guitar as an adult.",
    "What is the difference between weather and climate?",
    "How long should I let a steak rest after cooking it?",
    "Explain what an API is to a ten-year-old.",
    "My laptop is running slowly. What can I check first?",
    "What is a haiku? Write one about the sea.",
)
