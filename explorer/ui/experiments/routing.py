"""Change the routing of a mixture of experts: a top-k sweep, dropped experts, a forced expert, or
routing by token id alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from explorer.adapters import family, interventions
from explorer.adapters.common import display_tokens, tokenize
from explorer.experiments.prompts import SENTENCES
from explorer.plots import experiments as plots
from explorer.ui.experiments.common import HOW_INTERVENTION, VIEW, Tool, keep, refused, restore, show_result, text_ids
from explorer.ui.view import cached


@cached(max_entries=32)
def routing(loaded, ids: tuple, top_k: int | None, drop: tuple, force: tuple, by_id: bool, weight: str = "first"):
    table = reference_token_table(loaded) if by_id else None
    return interventions.route_override(
        loaded, np.asarray(ids), top_k=top_k, drop=drop, force=force, token_table=table, force_weight=weight
    )


@cached(max_entries=8)
def reference_token_table(loaded):
    return interventions.token_table(loaded, [tokenize(loaded, s)[0] for s in SENTENCES])


@cached(max_entries=16)
def top_k_sweep(loaded, ids: tuple):
    return interventions.top_k_sweep(loaded, np.asarray(ids))


def routing_body(loaded) -> None:
    ids = text_ids(loaded)
    if ids is None:
        return
    actions = ["Top-k sweep", "Drop experts", "Force an expert", "Route by token id only"]
    key = VIEW.keys["moe"]
    restore(key, lambda value: value in actions)
    if st.session_state.get(key) not in actions:
        st.session_state[key] = actions[0]
    action = st.radio("Change", actions, key=key, horizontal=True)
    keep(key, action)
    config = loaded.model.config
    experts = interventions.num_experts(config)
    if action == actions[0]:
        _top_k_sweep(loaded, ids)
    elif action == actions[1]:
        restore("exp_drop", lambda value: isinstance(value, list) and all(e in range(experts) for e in value))
        dropped = st.multiselect(
            "Experts no token may use", list(range(experts)), key="exp_drop", format_func=lambda e: f"expert {e}"
        )
        keep("exp_drop", list(dropped))
        if not dropped:
            st.info("Pick experts to drop: their tokens go to each router's next choice.")
            return
        if refused(lambda: interventions.check_routing(config, len(ids), drop=dropped)):
            return
        show_result(
            loaded,
            routing(loaded, tuple(ids.tolist()), None, tuple(dropped), (), False),
            "exp_drop_fig",
            HOW_INTERVENTION,
        )
    elif action == actions[2]:
        _force_expert(loaded, ids, experts)
    else:
        st.caption(
            "Each token is routed by the mean router probabilities its id had over the 12 everyday sentences "
            "(context ignored); ids never seen there keep their own router's choice."
        )
        show_result(loaded, routing(loaded, tuple(ids.tolist()), None, (), (), True), "exp_by_id_fig", HOW_INTERVENTION)


def _top_k_sweep(loaded, ids) -> None:
    sweep = top_k_sweep(loaded, tuple(ids.tolist()))
    VIEW.figure(
        plots.top_k_figure(sweep),
        key="exp_topk_fig",
        caption=f"The same text with each token sent to k experts instead of the trained {sweep.trained_k}. Parameters "
        "per token as on the MoE page: everything but the experts a token does not use (embeddings included).",
    )
    st.dataframe(
        pd.DataFrame(
            {
                "top-k": sweep.ks,
                "loss (nats)": np.round(sweep.loss, 3),
                "parameters per token (M)": np.round(sweep.active_params / 1e6, 3),
            }
        ),
        hide_index=True,
    )


def _force_expert(loaded, ids, experts: int) -> None:
    tokens = display_tokens(loaded.tokenizer, ids)
    cols = st.columns(2)
    restore("exp_force_pos", lambda value: value in range(len(ids)))
    position = cols[0].selectbox(
        "Token", list(range(len(ids))), key="exp_force_pos", format_func=lambda i: f"{i}: {tokens[i]}"
    )
    keep("exp_force_pos", position)
    restore("exp_force_expert", lambda value: value in range(experts))
    expert = cols[1].selectbox(
        "Its first choice in every MoE layer",
        list(range(experts)),
        key="exp_force_expert",
        format_func=lambda e: f"expert {e}",
    )
    keep("exp_force_expert", expert)
    restore("exp_force_weight", lambda value: value in interventions.FORCE_WEIGHTS)
    weight = st.radio(
        "The forced expert's gate weight", list(interventions.FORCE_WEIGHTS), key="exp_force_weight",
        format_func=interventions.FORCE_WEIGHTS.get, horizontal=True, help=FORCE_HELP,
    )  # fmt: skip
    keep("exp_force_weight", weight)
    force = ((None, int(position), int(expert)),)
    if refused(lambda: interventions.check_routing(loaded.model.config, len(ids), force=force)):
        return
    result = routing(loaded, tuple(ids.tolist()), None, (), force, False, weight)
    show_result(loaded, result, "exp_force_fig", HOW_INTERVENTION)


FORCE_HELP = (
    "The forced expert takes the token's first slot. With the weight of the original first choice, the slots keep "
    "their gate weights in order (the original first choice, moved to the second slot, takes the second's weight); "
    "with its own router probability, every slot takes the router's probability of the expert now in it. Either is "
    "then renormalised over the chosen experts where the model renormalises (Mixtral does)."
)


TOOL = Tool(family.ROUTING, "Change the routing", routing_body)
