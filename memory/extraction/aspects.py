"""Naming what a preference is about (its aspect) by nearest label in embedding space.

Why embeddings rather than keyword rules: aspects are open-ended ("seating", "hotel atmosphere", "learning
format") and a clause rarely names them. Each label has a short description; the clause gets the label whose
description it is closest to. The label set is generic (everyday life domains) and can grow without code
changes elsewhere.
"""

from __future__ import annotations

import numpy as np

from memory.embedder import Embedder

ASPECTS: dict[str, str] = {
    "diet": "what I eat: vegan, vegetarian, allergies, intolerances, meat, dairy, gluten, sugar",
    "cuisine": "kinds of food and dishes I like, spicy, sweet, cooking, recipes",
    "drinks": "coffee, tea, alcohol, wine, beer, soft drinks",
    "restaurants": "restaurants, dining out, cafés, ambience of places to eat",
    "music": "music genres, bands, concerts, songs, playlists",
    "books": "books, novels, reading, genres of literature, authors, audiobooks",
    "movies and shows": "films, TV series, streaming, documentaries, genres of shows",
    "sports": "watching or playing sports, teams, games, athletes, motorsports",
    "fitness": "exercise, gym, workouts, running, yoga, training routine",
    "health": "health conditions, medication, sleep, stress, wellbeing, medical needs",
    "travel activities": "things to do on a trip, sightseeing, tours, adventure, beaches, hiking",
    "transportation": "how I travel: flying, trains, cars, buses, boats, cycling, driving",
    "accommodation": "hotels, hostels, rentals, where I stay, booking accommodation",
    "hotel atmosphere": "quiet or lively places, nightlife, crowds, noise, relaxing surroundings",
    "seating": "seats on planes, trains or venues, aisle or window, front or back",
    "learning format": "how I learn: classes, online courses, in person, group work, self-study, lectures",
    "work style": "remote or office work, schedule, teamwork, meetings, commute, workspace",
    "fashion": "clothing, style, colours, patterns, fabrics, shoes, brands",
    "home": "furniture, decor, home design, household items, gardening",
    "technology": "gadgets, phones, computers, software, apps, smart devices",
    "pets": "pets and animals, dogs, cats, pet care",
    "shopping": "where and how I buy things, brands, stores, second-hand, online shopping",
    "sustainability": "environment, eco-friendly choices, plastic, ethical products",
    "social setting": "being with people, crowds, parties, solitude, introvert, socialising",
    "budget": "cost, prices, spending, saving money, luxury or cheap",
    "climate": "weather, heat, cold, sun, seasons",
    "outdoors": "nature, hiking, camping, water activities, heights, wildlife",
    "hobbies": "arts, crafts, games, photography, painting, collecting",
    "communication": "how I like to be spoken to, tone, length, detail of answers",
    # who the user is
    "occupation": "my job, profession, occupation, workplace, what I do for a living, being retired",
    "where I live": "where I live or grew up, my city, town, state or country, where I'm from, moving house",
    "family": "my spouse, children, parents, siblings and relatives; being married, single or divorced",
    "age": "how old I am, my age in years",
    "education": "my school, college or university, what I study, my degree and grades",
    "goals": "what I want to become or achieve, my dreams, ambitions and plans for the future",
    "name": "my name, what people call me",
    "vehicle": "the car, truck or motorbike I drive or own",
    "appearance": "how I look: hair, eyes, height, build",
    "beliefs": "my religion, faith, politics and the causes I support",
}


class AspectNamer:
    """Assigns the nearest aspect label to clause embeddings; build once, it embeds the label descriptions."""

    def __init__(self, embedder: Embedder, aspects: dict[str, str] | None = None) -> None:
        self.labels = list((aspects or ASPECTS).keys())
        self._vectors = embedder.embed(list((aspects or ASPECTS).values()))  # (K, D)

    def name(self, clause_vectors: np.ndarray) -> list[str]:
        """One label per row of `clause_vectors` (N, D), unit vectors as the embedder returns them."""
        if len(clause_vectors) == 0:
            return []
        best = (clause_vectors @ self._vectors.T).argmax(axis=1)  # (N,)
        return [self.labels[i] for i in best]
