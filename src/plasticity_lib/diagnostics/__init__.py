"""Diagnostics of plasticity loss (Lyle et al., 2024, §3.2, §3.3, App. B.3, C, E).

Functions of arrays (``Intermediates``, feature matrices) or of ``(apply_fn, params, x)``
so they work with any Flax model; all are jit- and vmap-able (vmap over a leading seed
axis of ``params`` or of the arrays).

Submodules
----------
``units``          dead / dormant / linearized ("zombie") / saturated units, same-direction
                   gradient updates, preactivation statistics (§3.2, Fig. 2, E.3, E.8).
``representation`` parameter / feature / logit norms, predictive entropy, feature
                   singular values, effective rank, srank, condition number, the Fig. 15
                   top-singular-direction projection (§3.2, E.1, E.2).
``ntk``            empirical NTK (generic and fast per-layer routes), gradient cosines,
                   diagonal + rank-1 error and other summaries, first-order loss
                   decrease (§3.3, Fig. 3, App. C).
``curvature``      sharpness (top Hessian eigenvalue) by power iteration (§3.2).
``probe``          the App. B.3 plasticity probe (fit ``f(theta_T) + eta``).
"""

from .. import timing as _timing
from . import curvature, ntk, probe, representation, units
from .curvature import hessian_extreme_eigenvalues, hessian_top_eigenvalue, hvp, sharpness
from .ntk import (
    diag_rank1_error,
    diag_rank1_fit,
    entk,
    entk_fast,
    entk_from_layers,
    entk_generic,
    fast_entk_supported,
    grad_norm_cv,
    gradient_cosine,
    kernel_condition_number,
    kernel_effective_rank,
    loss_decrease_after_step,
    mean_abs_offdiag_cosine,
    mse_loss,
    ntk_summary,
    predicted_loss_decrease,
)
from .plasticity import PlasticityMeasure, plasticity_measure  # §2.2 measure
from .probe import plasticity_probe, probe_perturbation, probe_ratio, probe_vmapped
from .representation import (
    condition_number,
    effective_rank,
    feature_norm,
    feature_spectrum_summary,
    global_parameter_norm,
    logit_norm,
    parameter_norms,
    predictive_entropy,
    singular_values,
    srank,
    stable_rank,
    top_singular_direction_output,
)
from .units import (
    activation_slope,
    dead_unit_fraction,
    dead_units,
    dormant_scores,
    dormant_unit_fraction,
    dormant_units,
    layer_fractions,
    linearized_unit_fraction,
    linearized_units,
    preactivation_stats,
    preactivation_stats_per_layer,
    preactivation_update,
    same_direction_fraction,
    same_direction_units,
    saturated_unit_fraction,
    saturated_units,
    slope_spread,
    weight_gradient_from_preact_grads,
)

# entry points that run their own training or evaluation count as "evaluation" in the
# chapter's time account (plasticity_lib.timing)
plasticity_measure = _timing.timed("evaluation")(plasticity_measure)
plasticity_probe = _timing.timed("evaluation")(plasticity_probe)
probe_vmapped = _timing.timed("evaluation")(probe_vmapped)
