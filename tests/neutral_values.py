"""The neutral values of the mechanisms added together in session 4 (each branch's own
"switched off" set), shared by the tests that compare against the reference written before
them (`tests/data/core_trajectory_reference_ee4a1e4.npz`).

The CRS/ICANS physiology of issue 14 replaced the inflammation equations rather than adding
switchable terms, so its readouts (:data:`CRS_READOUTS`) are left out of such comparisons.
"""

FAILURE_ROUTES_OFF = {"fit_rho": 0.0, "fit_ex": 0.0, "fit_mem": 0.0, "k_reject": 0.0,
                      "ex_overload": 0.0, "bulk_access_cells": 0.0, "antigen_hill": 1.0,
                      "low_clone_cd19": 0.0, "cd19_spread": 0.0}
MARROW_OFF = {"crowd_max": 0.0, "stem_ld_kill": 0.0, "stem_infl_kill": 0.0}
TRAITS_OFF = {"productive_stim": 0.0, "ex_resist": 0.0, "pdl1_suppression": 0.0,
              "tp53_infiltration": 0.0, "noxa_low_pfn": 0.35}
#: session 5 (issue 11/10, LBCL response depth): nodal bulk blunts the CAR-T proliferation
#: signal, and LBCL's occult sanctuary reservoir is scaled down from the B-ALL seeding
LBCL_DEPTH_OFF = {"bulk_suppression": 0.0, "lbcl_cns_seed_scale": 1.0}
ALL_OFF = {**FAILURE_ROUTES_OFF, **MARROW_OFF, **TRAITS_OFF, **LBCL_DEPTH_OFF}
CRS_READOUTS = frozenset({"il6_pg_ml", "ifng_pg_ml", "temperature_c", "map_mmhg", "spo2_pct",
                          "encephalopathy", "ice_score"})
#: Session 5, issue 11 item 2 (antigen-escape routes): trogocytosis with fratricide, lineage
#: switch of KMT2A-rearranged B-ALL, CD20/CD22 co-loss of the escape subclone.
#: (low_clone_cd19 0.02 is its default before this session's retuning; the session-4 value
#: that switches the CD19-low subclone off, 0.0 in FAILURE_ROUTES_OFF, wins in ALL_OFF.)
ESCAPE_OFF = {"trog_max": 0.0, "trog_fratricide": 0.0, "switch_frac": 0.0,
              "escape_cd20_loss": 0.0, "escape_cd22_loss": 0.0, "low_clone_cd19": 0.02}
ALL_OFF = {**ESCAPE_OFF, **ALL_OFF}
#: Session 5: age-dependent endothelial and blood–brain-barrier vulnerability (inflammation.py).
AGE_TOX_OFF = {"en_age_per_decade": 0.0, "bbb_age_exp": 0.0}
ALL_OFF = {**AGE_TOX_OFF, **ALL_OFF}
#: both session-5 changes of the B-ALL default trajectory switched off: the model of main
#: 2e7dac1 (tests/data/core_trajectory_reference_2e7dac1.npz)
SESSION5_OFF = {**ESCAPE_OFF, **AGE_TOX_OFF}
#: Session 6 (issue 14 item 2): the neurological chance events' hazard steepness in E
#: (clinic/findings.py ``event_hill``; an argument of ``icans_findings``/``event_hazard``, not a
#: model parameter: it changes what the virtual clinician observes, not the ODEs).
FINDINGS_S5_OFF = {"event_hill": 3.0}
#: Session 6 (issue 11 items 1–2, relapse timing): the small-tumour regrowth boost
#: (model/tumour.py). Every older reference was written without it, so each "all off" set
#: carries it; with it alone off the model is main e15e7a7
#: (tests/data/core_trajectory_reference_e15e7a7.npz).
REGROWTH_OFF = {"regrowth_boost": 0.0}
ALL_OFF = {**REGROWTH_OFF, **ALL_OFF}
SESSION5_OFF = {**REGROWTH_OFF, **SESSION5_OFF}
#: Session 6, issue 14 (CRS severity distribution): IL-1 re-induces myeloid activation only in
#: cells primed by a primary stimulus (IFN-γ, tumour damage, CAR-T contact); 0 = no gate.
IL1_PRIMING_OFF = {"K_il1_prime": 0.0}
ALL_OFF = {**IL1_PRIMING_OFF, **ALL_OFF}
SESSION5_OFF = {**IL1_PRIMING_OFF, **SESSION5_OFF}
#: Session 8 (issue 14): fibrinogen consumption's half-maximal endothelial and myeloid
#: activations before their retuning (model/labs.py; lab parameters are population constants
#: that reach the model through ``simulate(overrides=...)``, cartsim.model.labs.LabCourse).
#: (their retuning was undone when the myeloid tolerance merged: the defaults are these again)
FIBRINOGEN_S7 = {"K_fib_en": 3.0, "K_fib_my": 3.5}
#: Session 8 (issue 10): the platelet mean transit time before its retuning (model/marrow.py).
PLATELET_MTT_S7 = {"mtt_plt": 8.0}
#: both session-8 retunings undone: the default model of main 2a9058e
SESSION8_FIXES_OFF = {**FIBRINOGEN_S7, **PLATELET_MTT_S7}
ALL_OFF = {**SESSION8_FIXES_OFF, **ALL_OFF}
SESSION5_OFF = {**SESSION8_FIXES_OFF, **SESSION5_OFF}

#: Session 8, issue 11 item 1 (primary refractoriness of LBCL): patient-to-patient CAR-T access
#: to the nodal disease (model/killing.py access_spread; LBCL only, so no B-ALL reference moves).
NODAL_ACCESS_OFF = {"access_spread": 0.0}
ALL_OFF = {**NODAL_ACCESS_OFF, **ALL_OFF}
SESSION5_OFF = {**NODAL_ACCESS_OFF, **SESSION5_OFF}

#: Session 8, issue 11 (cure as a chance event): the pre-existing escape subclone is present
#: only if a heritable variant lineage arose (Poisson in tumour × cd19_negative_fraction);
#: 0 = present in every patient. The reference cohort has no CD19-negative cells, so its
#: trajectory does not depend on it.
ESCAPE_PRESENCE_OFF = {"escape_lineage_cells": 0.0}
ALL_OFF = {**ESCAPE_PRESENCE_OFF, **ALL_OFF}
SESSION5_OFF = {**ESCAPE_PRESENCE_OFF, **SESSION5_OFF}

#: Session 8, issue 11: acquired CD19-loss per division 3e-12 -> 3e-13 (model/tumour.py
#: mu_loss). Not an off switch: the value before session 8, which every older reference was
#: written with (tests/data/core_trajectory_reference_2a9058e.npz is the model just before).
MU_LOSS_S7 = {"mu_loss": 3e-12}
ALL_OFF = {**MU_LOSS_S7, **ALL_OFF}
SESSION5_OFF = {**MU_LOSS_S7, **SESSION5_OFF}
#: every session-8 change of the B-ALL reference cohort's trajectory undone (the retunings and
#: mu_loss): with them the model gives back main 2a9058e within the solver tolerance
#: (tests/test_marrow.py; the solver's error mask moved the steps)
SESSION8_FIXES_OFF = {**SESSION8_FIXES_OFF, **MU_LOSS_S7}
#: Session 8, issue 14 (CRS duration): activation-induced myeloid tolerance; 0 = no tolerance
#: (the model of main 2a9058e, tests/data/core_trajectory_reference_2a9058e.npz).
MYELOID_TOLERANCE_OFF = {"k_my_tol": 0.0}
#: (on by default since the merge, so part of undoing session 8 on the reference cohort)
SESSION8_FIXES_OFF = {**SESSION8_FIXES_OFF, **MYELOID_TOLERANCE_OFF}
ALL_OFF = {**MYELOID_TOLERANCE_OFF, **ALL_OFF}
SESSION5_OFF = {**MYELOID_TOLERANCE_OFF, **SESSION5_OFF}


#: Session 16 (issue 14, the severe end of CRS): the room-air SpO₂ readout's shape before it
#: (24-point ceiling, Hill 3, K_ox 2). A readout the clinic's oxygen ladder reads, so it moves
#: the ``spo2_pct`` column of every reference written before session 16 (all of them); the
#: ODEs do not read it. :func:`assert_gives_back` applies it under any overrides.
SPO2_S15 = {"K_ox": 2.0, "spo2_drop_max": 24.0, "spo2_hill": 3.0}
ALL_OFF = {**SPO2_S15, **ALL_OFF}
SESSION5_OFF = {**SPO2_S15, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**SPO2_S15, **SESSION8_FIXES_OFF}
#: Session 16 (issue 14, IgG replacement): baseline IgG spread and the adult B-cell-independent
#: IgG share (population.py igg0_sd_log, igg_llpc_adult); at these values every patient has
#: IgG0 = igg0 and the share IgG_llpc, as in every reference written before session 16.
IGG_S15 = {"igg0_sd_log": 0.0, "igg_llpc_adult": 0.5}
ALL_OFF = {**IGG_S15, **ALL_OFF}
#: Session 16: acquired CD19 loss 3e-13 -> 3e-14 per division (model/tumour.py mu_loss); the
#: value every reference written in sessions 8-15 has (older sets carry MU_LOSS_S7, which wins).
MU_LOSS_S15 = {"mu_loss": 3e-13}
SESSION5_OFF = {**IGG_S15, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**IGG_S15, **SESSION8_FIXES_OFF}
#: Session 17 (issue 10, CD28 B-ALL non-response): the antigen-overload half-saturation
#: 10 -> 1000 targets/effector (model/killing.py overload_ratio) and the CD28 multiplier
#: 1 -> 10 (products.py cd28_ex_overload_x). The values every reference written before
#: session 17 has; :func:`assert_gives_back` applies them under any overrides.
OVERLOAD_S16 = {"overload_ratio": 10.0, "cd28_ex_overload_x": 1.0}
ALL_OFF = {**OVERLOAD_S16, **ALL_OFF}
SESSION5_OFF = {**OVERLOAD_S16, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**OVERLOAD_S16, **SESSION8_FIXES_OFF}
#: Session 17 (issue 14, prolonged cytopenia): stem/progenitor reserve recovery 0.07 -> 0.05/d
#: (model/marrow.py stem_recovery). The value every reference before session 17 has.
STEM_RECOVERY_S16 = {"stem_recovery": 0.07}
ALL_OFF = {**STEM_RECOVERY_S16, **ALL_OFF}
SESSION5_OFF = {**STEM_RECOVERY_S16, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**STEM_RECOVERY_S16, **SESSION8_FIXES_OFF}

def reference_cohort():  # type: ignore[no-untyped-def]
    """The 3-patient cohort of tests/data/core_trajectory_reference*.npz (tests/data/README.md):
    simulate it with tisagenlecleucel, days=40, seed=11."""
    import numpy as np

    from cartsim.population import Cohort

    return Cohort("b-all", weight_kg=np.array([18.0, 45.0, 70.0]),
                  age_y=np.array([5.0, 14.0, 24.0]),
                  marrow_blasts_pct=np.array([80.0, 40.0, 10.0]),
                  noxa_low=np.array([1.0, 0.0, 0.0]), dr_defect=np.array([0.0, 0.5, 0.0]),
                  pdl1=np.array([0.0, 0.0, 0.8]))

def assert_gives_back(reference, overrides=None) -> None:  # type: ignore[no-untyped-def]
    """Simulate :func:`reference_cohort` by the tests/data/README.md recipe (tisagenlecleucel,
    days=40, seed=11) with ``overrides`` and assert that every numeric readout equals the
    ``reference`` .npz to the solver's tolerance.

    Until session 25 this was bit for bit (solver steps included); the session-25 competence
    state (:data:`COMPETENCE_S24`) adds one term to the solver's error norm, a mean over all
    states, so the steps move at the tolerance level even with the state held at 1. The
    comparison is the one the older references use (tests/test_regrowth.py): rtol 2e-3, the
    tumour while above the stochastic layer's threshold."""
    import numpy as np

    from cartsim.products import get_product
    from cartsim.simulation import simulate

    ref = np.load(reference)
    res = simulate(reference_cohort(), get_product("tisagenlecleucel"), days=40, seed=11,
                   overrides={**LD_LINEAR_S44, **MARROW_S43, **SPO2_S15, **IGG_S15,
                             **MU_LOSS_S15, **OVERLOAD_S16,
                             **STEM_RECOVERY_S16, **SILENT_APLASIA_S18, **SILENT_ENGAGED_S19,
                             **MEM_AGE_S21, **COMPETENCE_S24, **MURAL_S25, **B_RECOVERY_S28,
                             **ANG_GATE_S41, **BALL_PACKING_S42,
                             **(overrides or {})})
    assert_matches_reference(res.trajectories, ref)


#: readouts of the tumour and what is derived from it: compared only while the tumour is above
#: the stochastic layer's threshold (below it, extinction is a chance event)
TUMOUR_READOUTS = ("tumour_cells", "cns_tumour_cells", "marrow_blast_pct", "mrd_fraction",
                   "cd19_negative_tumour_fraction", "spd_cm2")


def assert_matches_reference(t, ref, rtol=2e-3, skip=(), atol=1e-9) -> None:  # type: ignore[no-untyped-def]
    """Every numeric readout of the trajectories ``t`` equals the reference ``.npz`` ``ref``
    (loaded) to ``rtol`` (the solver's tolerance) and ``atol``, except ``skip``; the tumour
    while above the stochastic layer's threshold (10⁴ cells)."""
    import numpy as np

    for col in ref.files:
        if col == "steps" or col in TUMOUR_READOUTS or col in skip:
            continue
        a, b = t[col].to_numpy(), ref[col]
        assert np.array_equal(np.isfinite(a), np.isfinite(b)), col
        m = np.isfinite(b)
        np.testing.assert_allclose(a[m], b[m], rtol=rtol, atol=atol, err_msg=col)
    a, b = t["tumour_cells"].to_numpy(), ref["tumour_cells"]
    big = b > 1e4
    np.testing.assert_allclose(a[big], b[big], rtol=rtol)

#: Session 8, issues 10/11 (durable remission): host anti-lymphoma immune control of small
#: nodal residues (model/killing.py host_kill; LBCL only, so no B-ALL reference moves).
HOST_CONTROL_OFF = {"host_kill": 0.0}
ALL_OFF = {**HOST_CONTROL_OFF, **ALL_OFF}
SESSION5_OFF = {**HOST_CONTROL_OFF, **SESSION5_OFF}

#: Session 11, issues 10/11 (relapse timing): death-receptor bystander kill 0.15 -> 0.05
#: (model/tumour.py bystander). Not an off switch: the value every older reference was written
#: with. (The session's other changes, escape presence, the B-ALL escape density and the B-ALL
#: death hazard, do not touch the reference cohort: it has no CD19-negative cells and the death
#: model is the trial layer's.)
BYSTANDER_S10 = {"bystander": 0.15}
ALL_OFF = {**BYSTANDER_S10, **ALL_OFF}
SESSION5_OFF = {**BYSTANDER_S10, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**SESSION8_FIXES_OFF, **BYSTANDER_S10}
#: Session 11, issue 10 (marrow clearance by day 28): the per-target kill ceiling 4 -> 6 per day
#: (model/tumour.py kill_max). The value every older reference was written with.
KILL_MAX_S10 = {"kill_max": 4.0}
ALL_OFF = {**KILL_MAX_S10, **ALL_OFF}
SESSION5_OFF = {**KILL_MAX_S10, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**SESSION8_FIXES_OFF, **KILL_MAX_S10}
#: Session 12, issues 10/11 (relapse timing): B-ALL regrows 1.3 × r_tumour
#: (population.POPULATION_PARAMS ball_growth_factor; a patient-builder constant that reaches the
#: model through ``simulate(overrides=...)``). The value every older reference was written with.
BALL_GROWTH_S11 = {"ball_growth_factor": 1.0}
ALL_OFF = {**BALL_GROWTH_S11, **ALL_OFF}
SESSION5_OFF = {**BALL_GROWTH_S11, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**SESSION8_FIXES_OFF, **BALL_GROWTH_S11}
#: Session 13, issues 10/11 (what a CNS examination sees): occult sanctuary seeding 1e-3 -> 3e-5
#: of the marrow load (model/tumour.py cns_seed_frac; lbcl_cns_seed_scale 0.01 -> 1/3 keeps the
#: LBCL seeding). The values every older reference was written with.
CNS_SEED_S12 = {"cns_seed_frac": 1e-3, "lbcl_cns_seed_scale": 0.01}
#: (an older "off" set that sets lbcl_cns_seed_scale to 1.0, the B-ALL seeding, keeps it)
ALL_OFF = {**CNS_SEED_S12, **ALL_OFF}
SESSION5_OFF = {**CNS_SEED_S12, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**SESSION8_FIXES_OFF, **CNS_SEED_S12}
#: Session 19 (issue 14, no fever in remission): normal B-lineage kills leave the inflammatory
#: kill signal (model/killing.py w_b_kill_inflam 1 -> 0) and the IL-1 priming gate becomes a
#: Hill-2 switch (model/inflammation.py n_il1_prime 1 -> 2, K_il1_prime 0.02 -> 0.15). The
#: values every older reference was written with; :func:`assert_gives_back` applies them under
#: any overrides (an older set's K_il1_prime = 0, no gate, wins where it is given).
SILENT_APLASIA_S18 = {"w_b_kill_inflam": 1.0, "n_il1_prime": 1.0, "K_il1_prime": 0.02}
ALL_OFF = {**SILENT_APLASIA_S18, **ALL_OFF}
SESSION5_OFF = {**SILENT_APLASIA_S18, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**SILENT_APLASIA_S18, **SESSION8_FIXES_OFF}
#: Session 20 (issue 14, no fever in remission on a CD28 product): effectors engaged on normal
#: B-lineage cells leave the engaged CAR-T that drive IFN-γ and myeloid contact activation
#: (model/killing.py w_b_engaged_inflam 1 -> 0). The value every older reference was written
#: with; :func:`assert_gives_back` applies it under any overrides.
SILENT_ENGAGED_S19 = {"w_b_engaged_inflam": 1.0}
ALL_OFF = {**SILENT_ENGAGED_S19, **ALL_OFF}
SESSION5_OFF = {**SILENT_ENGAGED_S19, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**SILENT_ENGAGED_S19, **SESSION8_FIXES_OFF}
#: Session 22 (issues 10/11, relapse in children): a child's CAR-T memory persists longer
#: (population.POPULATION_PARAMS mem_age_per_decade; a patient-builder constant that reaches the
#: model through ``simulate(overrides=...)``). 0 = off, the value every older reference was
#: written with; :func:`assert_gives_back` applies it under any overrides.
MEM_AGE_S21 = {"mem_age_per_decade": 0.0}
ALL_OFF = {**MEM_AGE_S21, **ALL_OFF}
SESSION5_OFF = {**MEM_AGE_S21, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**MEM_AGE_S21, **SESSION8_FIXES_OFF}
#: Session 25 (issue 14, when CRS starts): the effectors' cytokine competence (model/cart.py
#: k_qc; 0 = it stays 1) scales their contact activation of myeloid cells, with faster myeloid
#: kinetics (model/inflammation.py k_my 0.6 -> 2.4, d_my 0.5 -> 2.0) and a lower contact
#: half-saturation (K_my_car 3 -> 0.1; products.py cd28_K_my_car_x 0.05 -> 0.2). The values
#: every older reference was written with; :func:`assert_gives_back` applies them under any
#: overrides. The competence is a new state, so the solver's error norm (a mean over the
#: states) differs by that one term: references written before it come back to the solver's
#: tolerance, not bit for bit.
COMPETENCE_S24 = {"k_qc": 0.0, "k_my": 0.6, "d_my": 0.5, "K_my_car": 3.0,
                  "cd28_K_my_car_x": 0.05}
ALL_OFF = {**COMPETENCE_S24, **ALL_OFF}
SESSION5_OFF = {**COMPETENCE_S24, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**COMPETENCE_S24, **SESSION8_FIXES_OFF}
#: Session 26 (issue 14, ICANS beyond the cytokine storm): circulating effector CAR-T engage
#: the CD19-low mural cells of the blood–brain barrier (model/inflammation.py w_mural; 0 = no
#: mural route) with a higher endothelial threshold for the rest (K_bbb 3 -> 3.5) and a weaker
#: age law of the barrier (model/inflammation.py bbb_age_exp 0.75 -> 0.4); the CD28
#: construct's lower antigen threshold (products.py cd28_K_antigen_x 1 -> 0.5) with the LBCL
#: escape subclone's density 0.1 -> 0.07 × the dominant clone (model/tumour.py low_clone_cd19)
#: and the B-ALL scale 0.2 -> 0.2857 (population.py ball_escape_cd19_scale), so B-ALL escape
#: densities stay 0.02. The values every older reference was written with;
#: :func:`assert_gives_back` applies them under any overrides (an older set's
#: low_clone_cd19 wins where it is given).
MURAL_S25 = {"w_mural": 0.0, "K_bbb": 3.0, "bbb_age_exp": 0.75, "cd28_K_antigen_x": 1.0,
             "low_clone_cd19": 0.1, "ball_escape_cd19_scale": 0.2}
ALL_OFF = {**MURAL_S25, **ALL_OFF}
SESSION5_OFF = {**MURAL_S25, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**MURAL_S25, **SESSION8_FIXES_OFF}
#: Session 29 (issue 10, MRD-level leukaemias): the B-progenitor output recovers after
#: chemotherapy and lymphodepletion within days, not months (model/bcells.py marrow_recovery_B
#: 0.02 -> 0.15/d). The value every older reference was written with; :func:`assert_gives_back`
#: applies it under any overrides.
B_RECOVERY_S28 = {"marrow_recovery_B": 0.02}
ALL_OFF = {**B_RECOVERY_S28, **ALL_OFF}
SESSION5_OFF = {**B_RECOVERY_S28, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**B_RECOVERY_S28, **SESSION8_FIXES_OFF}
#: Session 42 (issue 14): the endothelium's angiopoietin-2 self-amplification is gated by its
#: cytokine drive (model/inflammation.py ang_gate; 0 = ungated). The value every older
#: reference was written with; :func:`assert_gives_back` applies it under any overrides.
ANG_GATE_S41 = {"ang_gate": 0.0}
ALL_OFF = {**ANG_GATE_S41, **ALL_OFF}
SESSION5_OFF = {**ANG_GATE_S41, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**ANG_GATE_S41, **SESSION8_FIXES_OFF}
#: Session 43 (issue 10): the B-ALL burden <-> blast mapping packs the leukaemic marrow
#: (model/tumour.py ball_packing 3; 0 = the old f / (1 - f) mapping). The value every older
#: reference was written with; :func:`assert_gives_back` applies it under any overrides.
BALL_PACKING_S42 = {"ball_packing": 0.0}
ALL_OFF = {**BALL_PACKING_S42, **ALL_OFF}
SESSION5_OFF = {**BALL_PACKING_S42, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**BALL_PACKING_S42, **SESSION8_FIXES_OFF}
#: Session 44 (issues 10/14): the marrow of probe E1 switched on — the reserve's weight in the
#: neutrophil and platelet drives, lymphodepletion's megakaryocyte share, faster IFN-γ damage and
#: slower recovery of the reserve, and the erythroid lag with its reserve weight, iron restriction
#: and erythrophagocytosis (model/marrow.py). The values every older reference was written with
#: (stem_recovery 0.05 is session 17's; older sets carry STEM_RECOVERY_S16, which wins);
#: :func:`assert_gives_back` applies them under any overrides.
MARROW_S43 = {"neut_reserve_drive_exp": 1.0, "plt_reserve_drive_exp": 1.0,
              "ld_marrow_plt_x": 1.0, "stem_infl_kill": 0.06, "stem_recovery": 0.05,
              "ery_mtt": 0.0, "ery_reserve_exp": 1.0, "hepcidin_ery": 0.0,
              "rbc_infl_destroy": 0.0}
ALL_OFF = {**MARROW_S43, **ALL_OFF}
SESSION5_OFF = {**MARROW_S43, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**MARROW_S43, **SESSION8_FIXES_OFF}
#: Session 45 (issues 10/11): the saturating host T-cell kill of lymphodepletion
#: (model/niche.py). The linear kill every older reference was written with;
#: :func:`assert_gives_back` applies it under any overrides.
LD_LINEAR_S44 = {"ld_N_sat": 0.0, "ld_N_gain": 1.0}
ALL_OFF = {**LD_LINEAR_S44, **ALL_OFF}
SESSION5_OFF = {**LD_LINEAR_S44, **SESSION5_OFF}
SESSION8_FIXES_OFF = {**LD_LINEAR_S44, **SESSION8_FIXES_OFF}
