"""The lesson's exercises (d2l 8.5) as A/B pairs: two background runs, the same seed and settings except one
switch (``rnn_core.variants``), and what they answer, computed from their numbers.

Logic only (the page is ``views/exercises.py``, which draws), one module per job, gathered here for the page:

- :mod:`dashboard.exercise_catalogue`: the exercises, their sizes, each pair's settings, run ids and names;
- :mod:`dashboard.exercise_runs`: starting and stopping a pair on the server's scheduler, and who controls it;
- :mod:`dashboard.exercise_stats`: the pair's records and every minibatch, at the same epoch, as numbers;
- :mod:`dashboard.exercise_words`: the table, the caption, the sentences and "predict first";
- :mod:`dashboard.exercise_step`: step mode (its trainer is ``rnn_core.step_mode``).
"""
from .exercise_catalogue import (BASE, BUDGET_S, EPOCHS, EXERCISES, HIDDEN, SIZE_KEYS, SIZES_ENV,  # noqa: F401
                                 SIZES_VERSION, Exercise, Sizes, Variation, arm_label, arm_switches, arm_value,
                                 from_url, lang_now, pair_ids, pair_name, pair_settings, parse_seed, tr,
                                 upload_variation, value_word, variation_message)
from .exercise_runs import (ERROR_KEY, controls_pair, find_pair, pair_complete, pair_running,  # noqa: F401
                            start_pair, start_pair_keeping_the_error, stop_pair, take_error)
from .exercise_stats import (MINIBATCH_COLUMNS, SPIKE, ArmStats, above_by_epoch, arm_minibatches,  # noqa: F401
                             arm_stats, at_same_epoch, last_sample, minibatch_frame, pair_frame, pair_stats,
                             pair_theta, repeat_share, samples_side_by_side)
from .exercise_step import (STEP_RESTARTED, STEP_TRAINER, StepMode, history_table, intro,  # noqa: F401
                            restart_note, state_sentence, step_rows, step_settings, update_table)
from .exercise_words import (GUESS_CHOICES, SAME_PPL, SAME_REPEATS, SLOWER, TABLE_COLUMNS, clip_lines,  # noqa: F401
                             engine_note, guess_choice, guess_kind, guess_outcome, guess_question,
                             guess_reveal, overview, pair_table, pct, settings_line, share, summary)
