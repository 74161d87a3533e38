"""8 · Exercises: the lesson's exercises as A/B pairs trained in the background, and step mode.

A card per exercise: its question, one button that trains the pair (two runs, the same seed and settings
except one switch, on the server's scheduler), the curves overlaid, the pair's numbers and samples, and two
sentences computed from them (``dashboard/exercises.py``; drawn by ``dashboard/exercise_panels.py``).
``?exercise=&variation=&seed=`` reopens a pair. Step mode trains one minibatch per press and shows what that step
did.
"""
import streamlit as st

from dashboard import corpora, layout, runs, settings, sidebar
from dashboard import exercise_panels as panels
from dashboard import exercises as ex

ctx = sidebar.context()
lang = ex.lang_now()  # fixed for this script run: format functions are also called outside it


def tr(key: str, **fmt) -> str:
    return ex.tr(key, lang, **fmt)


reg = runs.registry()
state = st.session_state

st.title(tr("page.title"))
st.markdown(tr("page.intro"))

ids = list(ex.EXERCISES)


def exercise_name(i: str) -> str:
    return f"{ids.index(i) + 1} · {ex.tr(f'ex.{i}.title', lang)}"


if (refused := ex.from_url(state, st.query_params, "ex_exercise", "exercise", lambda v: v in ex.EXERCISES,
                           ids[0])) is not None:
    layout.url_note("exercise", refused, ids[0])
url_notes = st.container()  # a link's unknown exercise or variation, named with the one shown instead
c1, c2, c3 = st.columns([3, 3, 1])
ex_id = c1.selectbox(tr("page.exercise"), ids, key="ex_exercise", format_func=exercise_name)
exercise = ex.EXERCISES[ex_id]
var_ids = [v.id for v in exercise.variations]
var_key = f"ex_variation_{ex_id}"
if (refused := ex.from_url(state, st.query_params, var_key, "variation", lambda v: v in var_ids,
                           var_ids[0])) is not None:
    layout.url_note("variation", refused, var_ids[0])
if len(var_ids) > 1:
    var_id = c2.radio(tr("page.variation"), var_ids, key=var_key,
                      format_func=lambda v: ex.pair_name(exercise.variation(v), lang))
else:
    var_id = var_ids[0]
    c2.markdown(tr("page.variation_line", label=tr("page.variation"),
                   name=ex.pair_name(exercise.variation(var_id), lang)))
variation = exercise.variation(var_id)
with url_notes:
    layout.url_warning("exercise", lambda i: layout.choice_text(i, exercise_name(i)), ex_id)
    layout.url_warning("variation", lambda v: layout.choice_text(v, ex.pair_name(exercise.variation(v), lang)),
                       var_id)
heldout_text = None
if ex_id == "heldout":  # B may be scored on a text of the student's own
    uploaded = st.file_uploader(tr("card.upload"), type=["txt"], key="ex_upload")
    if uploaded is not None:
        heldout_text = uploaded.getvalue()
        variation = ex.upload_variation(uploaded.name, heldout_text)
seed = int(ctx.settings.seed)  # the sidebar's seed, bound to ?seed=
c3.metric(tr("page.seed"), seed, help=tr("page.seed_help"))
st.query_params.update(exercise=ex_id, variation=var_id)

info = corpora.corpus_info(settings.LESSON)
panels.card(exercise, variation, seed, info, reg, lang, heldout_text)

with st.expander(tr("page.overview"), icon=":material/list:"):
    st.dataframe(ex.overview(reg, seed, lang), hide_index=True, width="stretch")

panels.step_mode(info, seed, lang)
