"""Hidden units that mean something: text features, a unit finder and a clustering order of the units.

Karpathy's "The Unreasonable Effectiveness of RNNs" colours a passage by one unit's activation; the units
worth showing are found, not picked at random. Here a unit is scored by the Pearson correlation of its
activation H_t[unit] (after reading token t) with simple features of the text at t.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

VOWELS = set("aeiouAEIOU")
LONG_WORD = 7  # letters

# feature -> short label (char tokens); each is a value per input token t
CHAR_FEATURES = {
    "space": "is a space",
    "word_start": "first letter of a word",
    "word_end": "last letter of a word",
    "vowel": "is a vowel (a e i o u)",
    "position": "position in its word (1, 2, …; 0 outside words)",
    "long_word": f"inside a word of {LONG_WORD}+ letters",
}
WORD_FEATURES = {
    "long_word": f"word of {LONG_WORD}+ letters",
    "short_word": "word of 1-3 letters",
    "vowel": "word starts with a vowel",
}


def text_features(tokens: list[str], char_level: bool = True) -> pd.DataFrame:
    """One row per token, one column per feature (floats). A word is a maximal run of letters.

    Characters: space (the token is ' '), word_start (a letter after a non-letter or at the start),
    word_end (a letter followed by a non-letter or the end), vowel, position (1-based index of the letter
    in its word, 0 for non-letters), long_word (a letter of a word of at least 7 letters).
    Words: long_word (≥ 7 letters), short_word (≤ 3), vowel (starts with one).
    """
    if not char_level:
        return pd.DataFrame({
            "long_word": [float(len(w) >= LONG_WORD) for w in tokens],
            "short_word": [float(len(w) <= 3) for w in tokens],
            "vowel": [float(w[:1] in VOWELS) for w in tokens],
        }, columns=list(WORD_FEATURES))
    letter = [len(c) == 1 and c.isalpha() for c in tokens]
    n = len(tokens)
    position = np.zeros(n)
    word_len = np.zeros(n)
    t = 0
    while t < n:
        if not letter[t]:
            t += 1
            continue
        end = t
        while end < n and letter[end]:
            end += 1
        position[t:end] = np.arange(1, end - t + 1)
        word_len[t:end] = end - t
        t = end
    return pd.DataFrame({
        "space": [float(c == " ") for c in tokens],
        "word_start": (position == 1).astype(float),
        "word_end": [float(letter[i] and (i + 1 == n or not letter[i + 1])) for i in range(n)],
        "vowel": [float(c in VOWELS) for c in tokens],
        "position": position,
        "long_word": (word_len >= LONG_WORD).astype(float),
    }, columns=list(CHAR_FEATURES))


def _standardise(a: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit norm; constant columns become zeros (correlation 0)."""
    a = np.asarray(a, dtype=np.float64)
    a = a - a.mean(axis=0)
    norm = np.linalg.norm(a, axis=0)
    return np.divide(a, norm, out=np.zeros_like(a), where=norm > 1e-12 * max(1.0, float(norm.max(initial=0))))


def correlations(hidden: np.ndarray, features: pd.DataFrame) -> pd.DataFrame:
    """Pearson r of every unit (rows) with every feature (columns); 0 where either is constant.

    hidden: (steps, units) activations; features: (steps, features).
    """
    r = _standardise(hidden).T @ _standardise(features.to_numpy())  # (units, features)
    return pd.DataFrame(np.clip(r, -1.0, 1.0), columns=features.columns)


def unit_finder(hidden: np.ndarray, features: pd.DataFrame, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """For each feature its best unit (largest |r|), ranked by |r|: columns feature, label, unit, r, abs_r."""
    r = correlations(hidden, features)
    labels = labels or {}
    rows = []
    for name in r.columns:
        unit = int(np.argmax(r[name].abs().to_numpy()))
        value = float(r[name].iloc[unit])
        rows.append({"feature": name, "label": labels.get(name, name), "unit": unit, "r": value,
                     "abs_r": abs(value)})
    frame = pd.DataFrame(rows, columns=["feature", "label", "unit", "r", "abs_r"])
    return frame.sort_values("abs_r", ascending=False, kind="stable").reset_index(drop=True)


def best_unit(hidden: np.ndarray, features: pd.DataFrame) -> int:
    """The unit that matches some feature best (largest |r| over all units and features); 0 with no units."""
    if hidden.shape[1] == 0:
        return 0
    r = correlations(hidden, features).abs().to_numpy()
    if r.size == 0:
        return 0
    return int(np.unravel_index(np.argmax(r), r.shape)[0])


def cluster_order(hidden: np.ndarray) -> np.ndarray:
    """A permutation of the units that puts units with similar activation profiles side by side.

    Average-linkage agglomerative clustering on the correlation distance 1 − r between the units' profiles
    over the steps (hidden: (steps, units)); the order is the dendrogram's leaves, left to right. Constant
    units are at distance 1 from every unit. O(units³) in numpy: ~0.1 s for 512 units.
    """
    n = hidden.shape[1]
    if n <= 2:
        return np.arange(n)
    z = _standardise(hidden)
    dist = 1.0 - z.T @ z  # (units, units), in [0, 2]
    constant = ~z.any(axis=0)
    dist[constant, :] = 1.0
    dist[:, constant] = 1.0
    np.fill_diagonal(dist, np.inf)
    size = np.ones(n)
    members: list[list[int]] = [[i] for i in range(n)]  # leaf order of each live cluster
    alive = np.ones(n, dtype=bool)
    for _ in range(n - 1):
        a, b = np.unravel_index(np.argmin(dist), dist.shape)
        a, b = (a, b) if a < b else (b, a)
        # Lance–Williams for average linkage: d(a∪b, k) = (|a| d(a, k) + |b| d(b, k)) / (|a| + |b|)
        merged = (size[a] * dist[a] + size[b] * dist[b]) / (size[a] + size[b])
        merged[a] = np.inf
        dist[a, :] = merged
        dist[:, a] = merged
        dist[b, :] = np.inf
        dist[:, b] = np.inf
        size[a] += size[b]
        members[a] = members[a] + members[b]
        members[b] = []
        alive[b] = False
    (root,) = np.flatnonzero(alive)
    return np.array(members[root])
