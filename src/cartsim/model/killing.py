"""Engagement, CAR-T stimulation and killing at the disease site (MODEL.md §3; review B2–B12).

Sums the antigen-engaged target load over tumour clones (scaled by CAR-T access), the
sanctuary clone and normal B cells; stimulation is ratio-dependent in that load; kills per
effector saturate (finite search and handling time). Each clone's per-capita kill hazard
combines its engaged routes (:func:`cartsim.model.traits.route_kill_factor`, through
:func:`cartsim.model.tumour.clone_route_factor`) and death-receptor bystander killing.
Provides the quantities the CAR-T, tumour, B-cell and inflammation mechanisms consume.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.clones import N_CLONES, C
from cartsim.model.mechanism import Kernel, Mechanism, Quantity, unbound
from cartsim.model.mechanism import param as _p
from cartsim.model.tumour import (
    clone_engagement,
    clone_param_index,
    clone_route_factor,
    engagement,
)

S = unbound("S")  # state layout, bound by cartsim.model.layout
P = unbound("P")  # parameter layout, bound by cartsim.model.layout

PARAMS = (
    _p("bulk_access_cells", "cells (70-kg reference; × body_scale)", 2e10, 0.0, 1e14,
       "assumed size; direction: high baseline tumour burden (SPD, metabolic tumour volume) "
       "predicts CAR-T failure in LBCL (Locke 2020 Blood Adv, ZUMA-1; Vercellino 2020 Blood "
       "Adv; Dean 2020 Blood Adv: MTV > 147 mL; 2e10 cells ≈ 20 mL at 1e9 cells/mL is "
       "assumed) — hypoxic, poorly perfused, suppressive nodal masses; 0 = no burden "
       "dependence",
       "LBCL nodal tumour cells at which CAR-T killing per target halves (access and "
       "suppression in the mass): g / (1 + T/bulk_access_cells), T the current nodal "
       "tumour", 0.0, "killing"),
    _p("bulk_suppression", "–", 0.6, 0.0, 1.0,
       "hand-tuned against the ZUMA-1 rows (ORR, CR, OS at 6-18 months), session 5: at 60 "
       "patients 0.5 gave ORR 83 / CR 68 %, 0.7 gave 73 / 63 %, 1.0 gave 57 / 47 % (published "
       "82 / 54 %); re-tuned on the merged session-5 model (the escape subclone became "
       "killable, CR rose): `cartsim validate --studies zuma1,tancar7 --patients 100` passed "
       "34/64 rows at 0.6 (ZUMA-1 ORR 81, CR 75, OS 12 mo 76), 36/64 at 0.8 (73, 68, 68), "
       "30/64 at 1.0 (56, 51, 52), but the whole library (`cartsim validate --out DIR`, "
       "200/arm) passed 91/193 rows at 0.8 against 95/193 at 0.6 (TanCAR7 and the CD19/CD22 "
       "B-NHL study lose response), so 0.6 stays; direction: the suppressive nodal "
       "microenvironment of LBCL (myeloid suppressor cells and tumour interferon signalling, "
       "Jain 2021 Blood 137:2621; hypoxic, poorly perfused masses) blunts CAR-T proliferation,"
       " so expansion is not commensurate with a high tumour burden (Locke 2020 Blood Adv, "
       "ZUMA-1: expansion relative to pre-treatment burden determines durable response; Dean "
       "2020 Blood Adv: high metabolic tumour volume predicts axi-cel failure); 0 = bulk "
       "limits killing only (the model before session 5)",

       "share of the LBCL bulk factor 1 / (1 + T/bulk_access_cells) that also scales the "
       "CAR-T proliferation and recall signal: × (1 − x + x / (1 + T/bulk_access_cells))",
       0.0, "killing"),
    _p("ex_overload", "–", 1.0, 0.0, 50.0,
       "assumed size; chronic antigen overload drives CAR-T exhaustion (Long 2015 Nat Med "
       "tonic/chronic signalling; models.md §4.2: E → X rising with antigen load); "
       "0 = no overload term",
       "extra exhaustion (× k_ex·stim) when tumour targets per effector are far above "
       "overload_ratio", 0.0, "killing"),
    _p("overload_ratio", "targets/effector", 1000.0, 1e-3, 1e6,
       "size hand-chosen with cd28_ex_overload_x, session 17: a 2-dimensional TPE fit "
       "(`cartsim calibrate --space <cd28_ex_overload_x 1-30, overload_ratio 10-3000> "
       "--budget 18 --patients 200`, the 18 calibration studies) found the objective low "
       "along a ridge where only the far-overloaded start of a high-burden B-ALL expansion "
       "exhausts (best 22.5 / 2814: deviance 610 -> 522, but its held-out check lost 4 rows); "
       "1000 with 10 is the point of that ridge that gained rows on three validation seeds "
       "(docs/validation.md 'Session 17'); direction: effector:target ratios far below 1:10 "
       "lose function in vitro; 10 before session 17",
       "engaged tumour targets per site effector at which the overload exhaustion is half its "
       "maximum", 0.0, "killing"),
    _p("productive_stim", "–", 1.0, 0.0, 1.0,
       "assumed (review B9; Singh 2020 Cancer Discov 10:552: targets that survive engagement "
       "drive CAR-T dysfunction, and a low death-receptor score goes with less expansion; "
       "review B11: CD58 loss slows proliferation)",
       "share of the CAR-T proliferation/recall signal that needs a productive (killing) "
       "engagement: a clone's signal weight is (1 − x)·synapse + x·route kill factor "
       "(0: synapse quality only)", 0.0, "tumour"),
    _p("ex_resist", "–", 2.0, 0.0, 20.0,
       "assumed (review B9; Singh 2020: targets that survive engagement prolong antigen "
       "exposure and exhaust CAR-T — applied to every kill-resistant route, not only the "
       "death-receptor one)",
       "extra CAR-T exhaustion per unit kill resistance (1 − route kill factor) of the "
       "engaged targets", 0.0, "tumour"),
    _p("pdl1_suppression", "–", 0.5, 0.0, 1.0,
       "assumed (review B12: PD-L1 → PD-1 suppresses CAR signalling, cytotoxicity and "
       "proliferation)",
       "fraction of kill and of the proliferation signal lost per unit PD-L1 of the engaged "
       "targets", 0.0, "tumour"),
    _p("access_spread", "–", 0.5, 0.0, 3.0,
       "assumed size (σ); 0.5 since session 23: once later failure routes (CD28 overload "
       "exhaustion, host control, product fitness) carried part of the LBCL failure, 1.5 made "
       "too many non-responders; with the sheltered lesions (population lbcl_shelter_frac "
       "0.2) `cartsim validate --patients 1000` on the 8 LBCL specs gave calibration-spec "
       "deviance 258.1 / 250.2 / 256.9 / 254.2 at σ 0.75 / 0.5 / 0.25 / 0 and 271.4 at 1.0 "
       "(σ 1.5 without them: 293.9, σ 0.5 without them: 264.5; docs/validation.md 'Session "
       "23'); 0.5 keeps a between-patient spread the biopsies show. Direction: CAR-T "
       "infiltration of "
       "lymphoma masses differs widely "
       "between patients — an immune-excluded, myeloid-suppressed or interferon-signalling "
       "tumour microenvironment goes with axi-cel failure and a T-cell-inflamed one with "
       "durable response (Scholler 2022 Nat Med 28:1872, ZUMA-1/ZUMA-7 tumour biopsies: "
       "pre-treatment immune contexture and CAR-T infiltration predict response; Jain 2021 "
       "Blood 137:2621: tumour interferon signalling and myeloid suppressor cells in "
       "non-durable response). Hand-tuned against the ZUMA-1 CR row (calibration set), "
       "session 8: `cartsim validate --studies <the 8 LBCL specs> --patients 60` passed 52 / "
       "47 / 52 / 44 of 85 rows at σ 0 / 1.0 / 1.5 / 2.0 (ZUMA-1 CR 75 / 70 / 62 / 55 %, "
       "published 54; Σ squared differences 16769 / 17788 / 21493 / 25730: TanCAR7 and the "
       "CD19/CD22 B-NHL study lose response; docs/model.md 'Why patients fail'); 0 = every "
       "LBCL patient at lbcl_cart_access (the model before session 8)",
       "log-normal SD, between LBCL patients, of the CAR-T access factor of the nodal "
       "disease (median-preserving around lbcl_cart_access, capped at 1; population.build, "
       "keyed stream \"nodal_access\"; B-ALL, MCL and FL unaffected)", 0.0, "killing"),
    # ---- host anti-lymphoma immune control of small residues (LBCL only; session 8) ----
    _p("host_kill", "1/d", 0.1, 0.0, 2.0,
       "assumed size; direction: adaptive immunity holds occult cancer in equilibrium "
       "(Koebel 2007 Nature 450:903) and endogenous T-cell immunity recovers after "
       "lymphodepletion, so a small lymphoma residue left by CAR-T can be controlled after "
       "the CAR-T have contracted (ZUMA-1 long-term responders mostly lose detectable CAR-T "
       "and recover B cells yet stay in remission: Neelapu 2017 NEJM, Locke 2019 Lancet "
       "Oncol). Size hand-tuned against the ZUMA-1 OS 24/60-month rows (calibration set), "
       "session 8: above the LBCL small-residue regrowth rate (≈ 0.04/d), so a residue under "
       "≈ host_kill_cells dies out; `cartsim validate --studies zuma1,tancar7,"
       "wei_cd19_cd22_bnhl,shouval_tp53_lbcl,axicel_cd19_loss,axicel_expansion --patients "
       "60`: 49 / 51 / 50 / 49 of 77 rows pass at host_kill 0 / 0.1 with host_kill_cells "
       "3e5 / 1e5 / 1e6 (Σ squared differences 20279 / 18660 / 18775 / 18645; ZUMA-1 OS 60 "
       "months 18 / 42 / 40 / 43 %, published 42.6; docs/model.md); 0 = no host control "
       "(the model before)",
       "largest per-capita kill hazard of LBCL nodal tumour cells by host (non-CAR) immunity, "
       "reached by a small residue: host_kill / (1 + T / (host_kill_cells · body_scale)), "
       "T the nodal tumour (population.build: LBCL only; B-ALL, MCL and FL unaffected)",
       0.0, "killing"),
    _p("host_kill_cells", "cells (70-kg reference; × body_scale)", 3e5, 1.0, 1e12,
       "assumed: the host response is a limited pool of tumour-reactive T cells, so its "
       "kills saturate (≈ host_kill · host_kill_cells per day at most) and bulky disease "
       "escapes it; 3e5 (≈ 0.3 µL of tumour, far below PET/CT detection) hand-tuned with "
       "host_kill (ZUMA-1 PFS 15 months 52 / 50 / 47 % at 1e6 / 3e5 / 1e5, published 41)",
       "LBCL nodal tumour cells at which the host kill hazard halves", 0.0, "killing"),
    _p("tp53_infiltration", "–", 0.5, 0.0, 1.0,
       "assumed (review B10: TP53-altered LBCL has fewer infiltrating CAR-T)",
       "fraction of CAR-T access to the disease site lost when the tumour is TP53-altered",
       0.0, "tumour"),
    # ---- trogocytosis: CAR-T strip target antigen (review A21, B2; Hamieh 2019 Nature) ----
    _p("trog_max", "fraction", 0.5, 0.0, 0.99,
       "assumed size; Hamieh 2019 Nature 568:112 (CAR engagement transfers CD19/CD22 to the "
       "T cell by trogocytosis and lowers target density reversibly, more at high E:T; the "
       "lowered density escapes killing); 0 = no trogocytosis",
       "largest share of a tumour cell's surface target antigen stripped by CAR-T when "
       "effectors far outnumber targets (applied to CD19, CD20 and CD22 alike)", 0.0,
       "killing"),
    _p("trog_ratio", "effectors/target", 1.0, 1e-3, 1e3,
       "assumed (Hamieh 2019: antigen loss grows with the E:T ratio, marked at E:T ≥ 1)",
       "site effector CAR-T per tumour cell at which half of trog_max is stripped "
       "(quasi-steady state: density recovers within days once CAR-T pressure falls)", 0.0,
       "killing"),
    _p("w_b_kill_inflam", "–", 0.0, 0.0, 1.0,
       "structure: CAR-T kill leukaemia/lymphoma cells by gasdermin-E pyroptosis, whose "
       "released damage signals activate macrophages and drive CRS (Liu 2020 Sci Immunol "
       "5:eaax7969), while the daily death of normal B-lineage cells is cleared silently "
       "(apoptosis and efferocytosis: most marrow B precursors die in selection without "
       "inflammation) and years of CAR-T-maintained B-cell aplasia bring no fever; "
       "session 19: at 1 (the model before) the CAR-T's kill of the B cells a child's marrow "
       "keeps making held the myeloid IL-1 loop primed and 14-23 % of ELIANA children in "
       "continuous remission febrile on a given day from month 2 to year 2 "
       "(docs/model.md 'Silent B-cell aplasia'); 0 with the Hill gate n_il1_prime = 2, "
       "K_il1_prime = 0.15: 6-8 %, validation unchanged within its seed spread",
       "weight of the CAR-T's kills of normal B-lineage cells (progenitors and mature B cells) "
       "in the kill signal that drives tumour-death IL-6 and damage-driven myeloid activation "
       "(0: only tumour kills inflame; 1: every kill alike, the model before session 19)", 0.0,
       "killing"),
    _p("w_b_engaged_inflam", "–", 0.0, 0.0, 1.0,
       "structure: the CAR-T signals that activate monocytes/macrophages in CRS (CD40L "
       "contact, GM-CSF, IFN-γ) come from effectors engaging tumour in the tumour's "
       "inflamed microenvironment, where macrophages sit (Giavridis 2018 Nat Med 24:731, "
       "Norelli 2018 Nat Med 24:739); the few effectors that keep normal B-cell aplasia "
       "for months meet scattered B precursors and bring no fever (the counterpart of "
       "w_b_kill_inflam). Session 20: at 1 (the model before) a CD28 product's contact "
       "sensitivity (cd28_K_my_car_x 0.05) let ~10⁸-10⁹ effectors engaged on regenerating "
       "B precursors keep the myeloid cells activated, and 11 % of ZUMA-1 adults, tumour "
       "gone, were febrile (2 % at CRS grade 3) on day 91 (docs/model.md 'Silent B-cell "
       "aplasia')",
       "weight of the effectors engaged on normal B-lineage cells in the engaged CAR-T that "
       "drive IFN-γ and contact activation of myeloid cells (0: only tumour-engaged effectors "
       "inflame; 1: every engaged effector alike, the model before session 20)", 0.0,
       "killing"),
    _p("trog_fratricide", "1/d", 0.1, 0.0, 10.0,
       "assumed size; Hamieh 2019: antigen-bearing (trogocytosed) CAR-T are killed by other "
       "CAR-T (fratricide) and become hyporesponsive; 0 = no fratricide",
       "largest extra death rate of site effector CAR-T from fratricide, × stripped share "
       "× engaged targets per effector / (1 + that ratio)", 0.0, "killing"),
)

#: CD20/CD22 densities of normal B cells relative to blasts; progenitors are CD20-low.
_B_CD20, _B_CD22 = 1.0, 0.5
_PROG_CD20, _PROG_CD22 = 0.1, 0.5


@numba.njit(inline="always")
def site_activity(  # type: ignore[no-untyped-def]
    y: np.ndarray, p: np.ndarray, dy: np.ndarray, dr_sensitisation: float, gvl_hazard: float,
    gvl_hazard_sanctuary: float, noxa_induction: float, mito_priming: float,
    pd1_blockade: float, cart_pause: float, cd22_upregulation: float
):
    """Engagement, stimulation and killing at the disease site.

    Returns (stimulation, synapse-weighted quality, exhaustion factor, kills per day,
    antigen-engaged effectors, per-target hazard on B progenitors, on mature B cells, the
    per-capita CAR-T kill hazard of clones 0, 1, 2 and of the sanctuary clone, the fratricide
    death rate of effectors after trogocytosis).

    Salvage drugs (add-ons of :mod:`cartsim.model.salvage_drugs`; each quantity is neutral
    when no drug provides it, and the arithmetic then is exactly the model without them):
    ``noxa_induction`` and ``mito_priming`` restore lost perforin-route/intrinsic apoptosis,
    ``pd1_blockade`` removes that share of PD-L1's suppression and exhaustion, ``cart_pause``
    that share of CAR signalling (stimulation and killing: dasatinib) and
    ``cd22_upregulation`` multiplies the tumour clones' CD22 density (bryostatin).
    """
    nx, mt = noxa_induction, mito_priming
    pd1f = 1.0 - pd1_blockade  # share of PD-1 signalling left
    act = 1.0 - cart_pause  # share of CAR signalling left
    base0 = clone_param_index(0, 0)
    access = p[P.cart_access] * (1.0 - p[P.tp53_infiltration]
                                 * min(p[base0 + C.tp53_altered], 1.0))
    e_t = max(y[S.E_t], 0.0)
    e_b = engagement(p, p[P.B_antigen], _B_CD20, _B_CD22)
    e_p = engagement(p, p[P.B_antigen], _PROG_CD20, _PROG_CD22)
    bp, b = max(y[S.B_prog], 0.0), max(y[S.B], 0.0)
    load = e_b * b + e_p * bp
    b_load = load
    qload = load
    pdl1_load = 0.0
    dr_load = 0.0
    tumour_load = 0.0
    resist_load = 0.0
    # trogocytosis (quasi-steady state): the more effectors per tumour cell at the site, the
    # more target antigen they strip from each cell (Hamieh 2019)
    strip = 0.0
    if p[P.trog_max] > 0.0:
        site_t = 0.0
        for c in range(N_CLONES):
            site_t += max(y[S.T0 + c], 0.0) * access
        r_et = e_t / (site_t + 1.0)
        strip = p[P.trog_max] * r_et / (r_et + p[P.trog_ratio])
    dmult = 1.0 - strip
    for c in range(N_CLONES):
        tc = max(y[S.T0 + c], 0.0) * access
        ec = clone_engagement(p, c, dmult, cd22_upregulation)
        tumour_load += ec * tc
        base = clone_param_index(c, 0)
        dr_def = max(0.0, 1.0 - p[base + C.dr_sensitivity])
        load += ec * tc
        qload += ec * tc * _signal(p, c, nx, mt, pd1f)
        pdl1_load += ec * tc * p[base + C.pdl1]
        dr_load += ec * tc * dr_def
        resist_load += ec * tc * max(0.0, 1.0 - clone_route_factor(p, c, 1.0, nx, mt))
    # the sanctuary clone engages the few CAR-T cells that reach it
    ts_eng = clone_engagement(p, 0, 1.0, cd22_upregulation) * max(y[S.TS], 0.0) \
        * p[P.cns_access]
    load += ts_eng
    qload += ts_eng * _signal(p, 0, nx, mt, pd1f)
    # ratio-dependent: a target stimulates a limited number of effectors, so expansion on a
    # steady antigen source (regenerating B cells) saturates instead of growing without bound
    # K_stim and K_kill are whole-body counts quoted for the reference adult (body.py)
    bs = p[P.body_scale]
    stim = load / (load + p[P.K_stim] * bs + p[P.stim_competition] * e_t) * act
    quality = qload / load if load > 0.0 else 1.0
    ex_factor = 1.0
    if load > 0.0:
        ex_factor += (p[P.ex_pdl1] * pd1f * pdl1_load + p[P.ex_dr_defect] * dr_load
                      + p[P.ex_resist] * resist_load) / load
    if p[P.ex_overload] > 0.0:
        # tumour antigen overload: many engaged targets per effector exhaust it early
        ratio = tumour_load / (e_t + 1.0)
        ex_factor += p[P.ex_overload] * ratio / (ratio + p[P.overload_ratio])
    # kills per target: ratio-dependent in the target load, saturating at kill_max when
    # effectors vastly outnumber targets (finite search/handling time per target)
    g_raw = p[P.k_kill] * e_t / (p[P.K_kill] * bs + load)
    g = g_raw * p[P.kill_max] / (g_raw + p[P.kill_max]) * act
    if p[P.bulk_access_cells] > 0.0 and p[P.disease_lbcl] > 0.5:
        # bulky nodal masses: hypoxic, poorly perfused, suppressive tissue where CAR-T
        # cells reach and kill fewer targets per contact
        nodal = 0.0
        for c in range(N_CLONES):
            nodal += max(y[S.T0 + c], 0.0)
        bulk = 1.0 / (1.0 + nodal / (p[P.bulk_access_cells] * p[P.body_scale]))
        g = g * bulk
        # the same suppressive mass blunts the CAR-T proliferation/recall signal, so a large
        # burden no longer buys a proportionally large expansion
        quality *= 1.0 - p[P.bulk_suppression] + p[P.bulk_suppression] * bulk
    cd22 = cd22_upregulation
    h0 = _clone_hazard(p, 0, access, g, stim, dr_sensitisation, dmult, nx, mt, pd1f, cd22)
    h1 = _clone_hazard(p, 1, access, g, stim, dr_sensitisation, dmult, nx, mt, pd1f, cd22)
    h2 = _clone_hazard(p, 2, access, g, stim, dr_sensitisation, dmult, nx, mt, pd1f, cd22)
    hs = _clone_hazard(p, 0, p[P.cns_access], g, stim, dr_sensitisation, 1.0, nx, mt, pd1f,
                       cd22)
    # fratricide: effectors carrying stripped antigen are killed by other CAR-T, in proportion
    # to the antigen taken up per effector (none once the tumour is gone)
    fratricide = 0.0
    if strip > 0.0 and p[P.trog_fratricide] > 0.0:
        q = tumour_load / (e_t + 1.0)
        fratricide = p[P.trog_fratricide] * strip * q / (1.0 + q)
    g_prog = g * e_p
    g_b = g * e_b
    w_b = p[P.w_b_kill_inflam]
    kills = (h0 * max(y[S.T0], 0.0) + h1 * max(y[S.T1], 0.0) + h2 * max(y[S.T2], 0.0)
             + hs * max(y[S.TS], 0.0) + w_b * (g_prog * bp) + w_b * (g_b * b))
    # host anti-lymphoma immunity: a limited pool of tumour-reactive host T cells that kills a
    # small nodal residue but is swamped by bulk (not counted as CAR-T kills)
    if p[P.host_kill] > 0.0 and p[P.disease_lbcl] > 0.5:
        nodal_h = 0.0
        for c in range(N_CLONES):
            nodal_h += max(y[S.T0 + c], 0.0)
        h_host = p[P.host_kill] / (1.0 + nodal_h / (p[P.host_kill_cells] * p[P.body_scale]))
        h0 += h_host
        h1 += h_host
        h2 += h_host
    # donor alloreactivity after HSCT kills every clone (not counted as CAR-T kills)
    if gvl_hazard > 0.0 or gvl_hazard_sanctuary > 0.0:
        h0 += gvl_hazard
        h1 += gvl_hazard
        h2 += gvl_hazard
        hs += gvl_hazard_sanctuary
    # the engaged effectors that inflame: those on tumour (site and sanctuary), plus
    # w_b_engaged_inflam × those on normal B-lineage cells (at 1: every engaged effector,
    # exactly the model before session 20)
    # (written as a subtraction so that at 1 the second term is exactly 0.0)
    engaged = e_t * stim - (1.0 - p[P.w_b_engaged_inflam]) * e_t * stim * b_load / max(
        load, 1e-300)
    return stim, quality, ex_factor, kills, engaged, g_prog, g_b, h0, h1, h2, hs, fratricide


@numba.njit(inline="always")
def _signal(p: np.ndarray, c: int, noxa: float, mito: float, pd1f: float) -> float:
    """Proliferation/recall signal of a CAR-T engaging clone c, relative to a wild-type target.

    Synapse quality (CD58, B11) and PD-1 signalling (PD-L1, B12) weaken it; the
    ``productive_stim`` share needs the target to die, so kill-resistant clones (NOXA-low,
    death-receptor-defective, TP53-altered: B7, B9, B10) stimulate less expansion.
    """
    b = clone_param_index(c, 0)
    x = p[P.productive_stim]
    sig = (1.0 - x) * p[b + C.synapse_quality] + x * clone_route_factor(p, c, 1.0, noxa, mito)
    return sig * (1.0 - p[P.pdl1_suppression] * pd1f * min(p[b + C.pdl1], 1.0))


@numba.njit(inline="always")
def _clone_hazard(p: np.ndarray, c: int, access: float, g: float, stim: float,
                  dr_mult: float, dmult: float, noxa: float, mito: float, pd1f: float,
                  cd22: float) -> float:
    """Per-capita kill hazard of clone c: engaged routes plus death-receptor bystander kill
    (``dmult``: surface antigen left after trogocytosis; ``noxa``, ``mito``, ``pd1f``,
    ``cd22``: the salvage drugs' effects, see :func:`site_activity`)."""
    ec = clone_engagement(p, c, dmult, cd22)
    base = clone_param_index(c, 0)
    route = clone_route_factor(p, c, dr_mult, noxa, mito) \
        * (1.0 - p[P.pdl1_suppression] * pd1f * min(p[base + C.pdl1], 1.0))
    by = p[P.bystander] * p[P.w_dr] * (p[base + C.dr_sensitivity] * dr_mult) * stim
    return access * g * (ec * route + by)


MECHANISM = Mechanism(
    name="killing",
    module=__name__,
    summary="antigen engagement, CAR-T stimulation and the kill hazards at the disease site",
    params=PARAMS,
    quantities=(
        Quantity("stim", "–", "CAR-T stimulation (0–1), ratio-dependent in the engaged load"),
        Quantity("stim_quality", "–", "synapse-weighted quality of the engaged load"),
        Quantity("ex_factor", "–", "exhaustion multiplier from PD-L1 and DR-defective targets"),
        Quantity("kills", "cells/d",
                 "inflammatory CAR-T kills per day: tumour kills plus w_b_kill_inflam × the "
                 "normal B-lineage kills"),
        Quantity("engaged", "cells",
                 "inflammatory antigen-engaged effector CAR-T: those engaged on tumour plus "
                 "w_b_engaged_inflam × those engaged on normal B-lineage cells"),
        Quantity("kill_prog", "1/d", "per-capita CAR-T kill hazard on B progenitors"),
        Quantity("kill_b", "1/d", "per-capita CAR-T kill hazard on mature B cells"),
        Quantity("kill_h0", "1/d", "per-capita CAR-T kill hazard, tumour clone 0"),
        Quantity("kill_h1", "1/d", "per-capita CAR-T kill hazard, tumour clone 1"),
        Quantity("kill_h2", "1/d", "per-capita CAR-T kill hazard, tumour clone 2"),
        Quantity("kill_hs", "1/d", "per-capita CAR-T kill hazard, sanctuary clone"),
        Quantity("fratricide", "1/d",
                 "extra death rate of site effector CAR-T from fratricide after trogocytosis"),
        Quantity("dr_sensitisation", "–",
                 "multiplier of tumour cells' death-receptor (extrinsic apoptosis) sensitivity, "
                 "engaged and bystander; raised by drugs that sensitise the route",
                 neutral=1.0, combine="product"),
        Quantity("gvl_hazard", "1/d",
                 "graft-versus-leukaemia kill hazard on every tumour clone after allogeneic "
                 "HSCT (antigen-independent); provided by the gvl add-on", neutral=0.0),
        Quantity("gvl_hazard_sanctuary", "1/d",
                 "graft-versus-leukaemia kill hazard in the CNS/testis sanctuary",
                 neutral=0.0),
        Quantity("noxa_induction", "–",
                 "share (0–1) of a tumour clone's lost perforin-route sensitivity restored by "
                 "NOXA induction (HDAC inhibitor add-on)", neutral=0.0),
        Quantity("mito_priming", "–",
                 "share (0–1) of a tumour clone's lost intrinsic apoptosis (NOXA loss, TP53) "
                 "restored by mitochondrial priming (BH3-mimetic add-on)", neutral=0.0),
        Quantity("pd1_blockade", "–",
                 "share (0–1) of PD-L1 → PD-1 suppression and exhaustion of CAR-T removed "
                 "(anti-PD-1 add-on)", neutral=0.0),
        Quantity("cart_pause", "–",
                 "share (0–1) of CAR signalling (stimulation, killing, hence cytokine "
                 "production) blocked (dasatinib add-on)", neutral=0.0),
        Quantity("cd22_upregulation", "–",
                 "multiplier of the tumour clones' CD22 surface density (bryostatin add-on)",
                 neutral=1.0),
    ),
    kernels=(
        Kernel(site_activity,
               consumes=("dr_sensitisation", "gvl_hazard", "gvl_hazard_sanctuary",
                         "noxa_induction", "mito_priming", "pd1_blockade", "cart_pause",
                         "cd22_upregulation"), provides=(
            "stim", "stim_quality", "ex_factor", "kills", "engaged", "kill_prog", "kill_b",
            "kill_h0", "kill_h1", "kill_h2", "kill_hs", "fratricide")),
    ),
)
