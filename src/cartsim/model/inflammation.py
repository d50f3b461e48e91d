"""Cytokines, myeloid amplification, endothelium and encephalopathy (MODEL.md §5).

IL-6 is produced in proportion to killing (DAMP-driven, Hardiansyah 2019), amplified by and
secreted from activated myeloid cells (Santurio 2025); IFN-γ by antigen-engaged effectors.
Myeloid cells are activated by IFN-γ, by tumour-death products, by contact with engaged CAR-T
cells (CD40L–CD40, Giavridis 2018) and by their own IL-1 (Norelli 2018), a loop anakinra
breaks. So CRS follows the CAR-T expansion kinetics of the construct: a product that expands
faster and engages more (CD28) brings CRS earlier and more severe without a per-product
toxicity constant. Production is an
amount per day; the serum concentration it adds is that amount over the patient's plasma volume
(``plasma_ml``, :mod:`cartsim.model.body`), and damage-driven myeloid activation reads the kill
rate per litre of plasma, so CRS does not depend on body size at equal dose per kg and burden.
Tocilizumab blocks IL-6 signalling and receptor-mediated clearance (serum IL-6 rises),
siltuximab neutralises IL-6, steroids damp production and myeloid activation, anakinra damps
the myeloid loop. Endothelial activation follows the IL-6 signal, IFN-γ and IL-1 and is
amplified by its own angiopoietin-2 release (Gust 2017); capillary leak and vasoplegia (MAP,
SpO₂ readouts) follow it and can reach refractory shock. Endothelial activation opens the
blood–brain barrier (BBB, fraction disrupted); the encephalopathy state follows BBB disruption
(review A16), deep enough for an adult ICE score of 0–2, and neurofilament light (NfL) released
by neuronal injury follows the encephalopathy. Age sets the vulnerability of both: the
endothelial activation rate rises per decade above 20 y (endothelial activation markers rise
with age; Gust 2017: pre-lymphodepletion endothelial activation predicts severe neurotoxicity)
and the endothelial activation that opens the BBB falls as the CSF/serum albumin quotient
rises with age (Reiber: 4 + age/15 × 10⁻³), so at the same cytokines an adult has more
endothelial activation and more ICANS than a child. A second, CRS-independent route opens the
barrier from outside the cytokine storm: the mural cells (pericytes) that hold it together carry
CD19 at low density (Parker 2020), so circulating effector CAR-T cells that engage them lower the
endothelial activation at which it opens, with their concentration and the construct's
engagement of so little antigen (`K_antigen`, lower for CD28 constructs, Majzner 2020; none for
a CAR without a CD19 binder).
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.mechanism import Kernel, Mechanism, StateSpec, unbound
from cartsim.model.mechanism import param as _p
from cartsim.model.tumour import engagement

S = unbound("S")  # state layout, bound by cartsim.model.layout
P = unbound("P")  # parameter layout, bound by cartsim.model.layout

PARAMS = (
    _p("il6_base", "pg/mL", 3.0, 0.0, 1e3, "typical healthy serum IL-6", "baseline IL-6", 0.3,
       "inflam"),
    _p("p_il6", "pg/d per 1e9 kills/d", 700.0, 0.0, 1e8,
       "Hardiansyah 2019 structure; 0.25 pg/mL/d in the 2800 mL plasma of the 70-kg reference "
       "adult, hand-tuned (issue 14) so that kill-driven IL-6 in high-burden B-ALL and "
       "myeloid IL-6 (p_il6_my) share the CRS",
       "IL-6 amount produced per killing activity (concentration = amount / plasma_ml)",
       0.8, "inflam"),
    _p("d_il6", "1/d", 3.96, 0.1, 100.0, "Hardiansyah 2019", "IL-6 clearance", 0.0, "inflam"),
    _p("p_ifng", "pg/d per 1e9 engaged", 2800.0, 0.0, 1e8,
       "assumed (Hardiansyah 2019 structure): 1 pg/mL/d in the 2800 mL plasma of the 70-kg "
       "reference adult",
       "IFN-γ amount produced per antigen-engaged effector (concentration = amount / plasma_ml)",
       0.6, "inflam"),
    _p("d_ifng", "1/d", 1.51, 0.1, 100.0, "Hardiansyah 2019", "IFN-γ clearance", 0.0, "inflam"),
    _p("k_my", "1/d", 2.4, 0.0, 10.0,
       "Santurio 2025 structure; session 25: 0.6 -> 2.4 with d_my 0.5 -> 2.0 (same steady "
       "state k_my/d_my, a quarter of the lag): monocytes answer a stimulus within hours "
       "(human endotoxaemia: TNF-α peaks 2 h after LPS, Eur J Intern Med 2000;11:89; ex vivo "
       "hyporesponsiveness maximal at 6 h and gone by 12 h, Dillingh 2014 J Inflamm 11:28), so "
       "a 2-day myeloid "
       "time constant delayed fever past the CAR-T signal; `cartsim validate` (1,000/arm) with "
       "the cytokine competence of cart.py: onset median ZUMA-1 3 -> 2 d, ELIANA+ENSIGN 4 -> 3 "
       "d, ZUMA-1 neurotoxicity onset 9 -> 7 d (published 2, 3, 5), 168 -> 167 rows, deviance "
       "786.2 -> 790.0 (docs/validation.md 'Session 25')",
       "myeloid activation rate", 0.4, "inflam"),
    _p("d_my", "1/d", 2.0, 0.01, 10.0,
       "assumed (t½ ≈ 8 h; see k_my: activated monocytes return to rest within about half a "
       "day once the stimulus is gone, Dillingh 2014)", "myeloid deactivation rate", 0.0,
       "inflam"),
    _p("a_my", "–", 4.0, 0.0, 100.0, "assumed (Santurio 2025: myeloid cells dominate IL-6)",
       "IL-6 amplification by fully activated myeloid cells", 0.3, "inflam"),
    _p("K_ifng", "pg/mL", 50.0, 0.01, 1e5, "assumed", "IFN-γ for half-maximal myeloid activation",
       0.0, "inflam"),
    _p("k_en", "1/d", 0.4, 0.0, 10.0,
       "hand-tuned on the merged session-4 model against the CRS/ICANS rows of ELIANA, ZUMA-1 "
       "and ZUMA-4 (cartsim validate, 60/arm; 0.8 gave refractory shock in half of "
       "high-burden children)", "endothelial activation rate", 0.4, "inflam"),
    _p("d_en", "1/d", 0.35, 0.01, 10.0, "assumed (CRS resolves over days)",
       "endothelial recovery rate", 0.2, "inflam"),
    _p("K_en_il6", "pg/mL", 150.0, 0.01, 1e5, "assumed",
       "IL-6 signal for half-maximal endothelial activation", 0.5, "inflam"),
    _p("w_ifng_en", "–", 0.15, 0.0, 10.0, "assumed (hand-tuned, issue 14)",
       "weight of IFN-γ saturation relative to the IL-6 term in endothelial activation",
       0.0, "inflam"),
    _p("K_my_kill", "10⁹ cells/d per L plasma", 10.0 / 2.8, 0.001, 1e4,
       "assumed (tumour-cell death products activate myeloid cells; Liu 2020 pyroptosis): "
       "10⁹ × 10 kills/d in the 2.8 L plasma of the 70-kg reference adult",
       "CAR-T kill rate per litre of plasma (damage-signal concentration) giving half-maximal "
       "damage-driven myeloid activation", 0.0, "inflam"),
    _p("p_il6_my", "pg/mL/d", 60.0, 0.0, 1e5,
       "assumed (Santurio 2025: activated monocytes/macrophages are the main IL-6 source)",
       "IL-6 secreted by fully activated myeloid cells (a concentration rate: myeloid "
       "activation is a fraction, so it does not depend on body size)", 0.5, "inflam"),
    _p("K_my_car", "10⁹ cells per L plasma", 1.0, 1e-4, 1e3,
       "assumed (contact-dependent macrophage activation by CAR-T, Giavridis 2018); session "
       "25: 3 -> 0.1 with the cytokine competence of cart.py (k_qc), which scales the engaged "
       "concentration: a freshly infused product (≈ 10⁸ cells, 0.04-0.1 × 10⁹/L) now "
       "activates myeloid cells at its first encounters while the expanded, stimulated "
       "effectors of the second week do not saturate them; hand-tuned with k_qc and "
       "cd28_K_my_car_x (0.1 and 0.3, × 0.2 and 1.0; docs/validation.md 'Session 25'); "
       "session 50: 0.1 -> 1.0 with cd28_K_my_car_x 0.2 -> 0.02 (the CD28 products keep "
       "their 0.02): the 4-1BB products' contact signal is weaker (4-1BB CAR-T release less "
       "GM-CSF and CD40L per cell, Salter 2018 Sci Signal), calibrated to the library's "
       "deviance: spec seeds 780.5 -> 764.0 (rows 179 -> 179), held-out external library "
       "2372.1 -> 2268.1 (55 -> 54 rows); three root seeds in docs/validation.md "
       "'Session 50'; costs the children's CRS onset a day (ELIANA+ENSIGN median 3 -> 4, "
       "3 published)",
       "antigen-engaged CAR-T per litre of plasma giving half-maximal contact activation of "
       "myeloid cells (Hill 2)", 0.5, "inflam"),
    _p("p_il1", "pg/mL/d", 20.0, 0.0, 1e4,
       "assumed (Norelli 2018: monocyte IL-1 precedes IL-6); wide IIV: patients differ in "
       "how IL-1- or IL-6-dominant their myeloid response is (the A15 mechanism, docs/model.md)",
       "IL-1 secreted by fully activated myeloid cells", 0.8, "inflam"),
    _p("d_il1", "1/d", 4.0, 0.1, 100.0, "assumed (IL-1β serum half-life of hours)",
       "IL-1 clearance", 0.0, "inflam"),
    _p("K_il1", "pg/mL", 5.0, 0.01, 1e4, "assumed",
       "IL-1 signal for half-maximal myeloid self-activation", 0.0, "inflam"),
    _p("K_il1_prime", "–", 0.15, 0.0, 10.0,
       "structure from IL-1 biology (issue 14, session 6): monocyte IL-1β needs a priming "
       "signal (NF-κB: "
       "TLR/DAMP, CD40L–CD40 contact with CAR-T, IFN-γ) before IL-1 can re-induce it "
       "(the two-signal model of IL-1β release, Netea 2015 Annu Rev Immunol; in CRS the "
       "myeloid IL-1 follows CAR-T–myeloid contact, Giavridis 2018, Norelli 2018); "
       "without this gate the IL-1 loop had a loop gain > 1 at rest and, once lit, kept a "
       "39.8 °C fever for months after the tumour and the CAR-T peak were gone; value "
       "hand-tuned against the CRS/neurotoxicity rows of ELIANA, ZUMA-1, ZUMA-4, NCI "
       "CD19-28z, TanCAR7 and MSKCC 19-28z (cartsim validate, 60/arm, session 6): 0.1 "
       "also silenced part of the acute CRS of adults with LBCL (ZUMA-1 neurotoxicity any "
       "58 → 47 %); 0.02 keeps the acute CRS and shortens the chronic loop (40 ZUMA-1 "
       "patients over 60 days: fever on ≥ 30 days in 25 % without the gate, 10 % at 0.02, "
       "0 % at 0.1; the few CAR-T cells left after the peak leave a primary stimulus of "
       "≈ 0.01); 0 = no gate (the model before it). Session 19: 0.15 with the Hill "
       "exponent n_il1_prime = 2 (a switch: half-open at 0.15, 0.92 open at a CRS-scale 0.5, "
       "0.1 at the ≈ 0.05 that B-cell aplasia keeps; the session-6 value 0.02 was a "
       "Michaelis-Menten gate, 70 % open at 0.05)",
       "primary myeloid stimulus (the sum of the IFN-γ, tumour-damage and CAR-T-contact "
       "activation terms, each 0–1) at which IL-1 self-activation of myeloid cells is "
       "half-maximal: IL-1 amplifies activation that has a primary cause, it does not sustain "
       "it alone", 0.0, "inflam"),
    _p("n_il1_prime", "–", 2.0, 1.0, 4.0,
       "structure: NF-kB priming of monocytes for IL-1β is a threshold response to the "
       "strength of the first signal (two-signal model, Netea 2015 Annu Rev Immunol), so a "
       "CRS-scale stimulus primes and the trickle left by months of B-cell aplasia does not; "
       "session 19, with K_il1_prime 0.15 and w_b_kill_inflam 0 (docs/model.md 'Silent B-cell "
       "aplasia'): ELIANA children in continuous remission febrile on a given day 14-23 -> "
       "6-8 %, ZUMA-1 adults 8-27 -> 3-12 %; cartsim validate --replicates 3 rows 155.7 -> "
       "153.3 of 225 (SD 6), deviance 1048 -> 1049; 1 = Michaelis-Menten gate (the model "
       "before)",
       "Hill exponent of the IL-1 priming gate prim^n / (prim^n + K_il1_prime^n)", 0.0,
       "inflam"),
    # ---- activation-induced myeloid tolerance (session 8, issue 14: CRS duration) ----
    _p("k_my_tol", "1/d per unit myeloid activation", 0.1, 0.0, 10.0,
       "structure: endotoxin tolerance and its cross-tolerance to IL-1/TNF, the refractory "
       "state of monocytes/macrophages after activation (Draisma 2009 Crit Care Med: daily "
       "LPS in volunteers, IL-6 response 88 % and fever abolished by day 5; Cavaillon 2006 "
       "Crit Care, Biswas 2009 Trends Immunol); rate assumed (0.1/d per unit with d_my_tol "
       "0.1/d: half tolerance at steady full activation, MY = 1; MY reaches 2–4 in a child's "
       "CRS); hand-tuned against the CRS/neurotoxicity rows (calibration set): at 0.1 the rows "
       "of ELIANA, ENSIGN, CHOP, NCI, MSKCC, ZUMA-1 and "
       "ZUMA-4 (cartsim validate, 60/arm, session 8) moved 26 → 24 of 47 passing and the "
       "sum of squared differences 20195 → 14995 (docs/model.md, CRS duration)",
       "rate at which myeloid activation makes myeloid cells refractory to re-activation "
       "(endotoxin/cross-tolerance): dTOL/dt = k_my_tol · MY · (1 − TOL) − d_my_tol · TOL; "
       "the myeloid activation drive is multiplied by (1 − TOL); 0 = no tolerance (the model "
       "before it)", 0.0, "inflam"),
    _p("d_my_tol", "1/d", 0.1, 0.01, 10.0,
       "Greisman 1964 J Exp Med 119:241 (pyrogenic response still reduced to a second endotoxin "
       "injection 7 days after the first) and Rittig 2015 Shock (no tolerance left after 5 "
       "weeks): half-life ≈ 1 week, assumed within that range",
       "loss rate of myeloid tolerance", 0.0, "inflam"),
    _p("w_il1_en", "–", 0.8, 0.0, 10.0, "assumed (IL-1 activates endothelium)",
       "weight of the IL-1 term in endothelial activation", 0.0, "inflam"),
    _p("a_ang", "–", 1.0, 0.0, 10.0,
       "assumed (angiopoietin-2 released by activated endothelium antagonises Tie2; Gust 2017)",
       "strength of endothelial self-amplification", 0.3, "inflam"),
    _p("K_ang", "–", 2.0, 0.01, 100.0, "assumed",
       "endothelial activation for half-maximal self-amplification", 0.0, "inflam"),
    _p("ang_il6_share", "–", 0.0, 0.0, 1.0,
       "Kang 2020 PNAS 117:22351: in endothelial cells IL-6 trans-signalling forms a circuit "
       "that drives their own IL-6, IL-8 and MCP-1 and PAI-1, and tocilizumab blunts that "
       "activation; the size of the share is not measured. 0 = the model before session 38 "
       "(tocilizumab leaves the self-amplification whole); 0.5 and 1 probed on the whole "
       "library (session 38, docs/validation.md): CTL019-era and ZUMA-1 steroid use pass, "
       "intubation among ELIANA+ENSIGN CRS falls 10.5 -> 4 % (17), rows 181 -> 179 / 177: "
       "left at 0",
       "share of the endothelial self-amplification that runs through IL-6 signalling, and is "
       "removed by IL-6(R) blockade in proportion to the blocked share", 0.0, "inflam"),
    _p("ang_gate", "–", 0.05, 0.0, 10.0,
       "structure: angiopoietin-2 is released from Weibel-Palade bodies when the endothelium is "
       "stimulated (Fiedler 2004 Blood 103:4150) and sensitises it to inflammatory cytokines "
       "(Fiedler 2006 Nat Med 12:235), so the loop amplifies activation that has a cytokine "
       "cause and resolves with it; 0 = the model before session 42, whose ungated loop held "
       "the endothelium of patients in the tail of k_en × a_ang / d_en activated for years "
       "after every cytokine had gone (MAP 47 mmHg, SpO2 67 % for 5 years, alive); value "
       "assumed: half on at ≈ 8 pg/mL of unblocked IL-6, just above its normal range (< 7); "
       "`cartsim validate` 184 -> 184 of 234 rows, deviance 929.0 -> 925.8 (docs/validation.md "
       "'Session 42')",
       "cytokine drive of the endothelium (IL-6, IFN-γ, IL-1 terms of the activation; "
       "1 ≈ saturating IL-6) at which the angiopoietin-2 self-amplification is half on "
       "(Hill 2); 0 = always on", 0.0, "inflam"),
    _p("k_bbb", "1/d", 1.0, 0.0, 10.0, "assumed (Gust 2017: BBB disruption in severe ICANS)",
       "blood–brain-barrier disruption rate", 0.3, "inflam"),
    _p("d_bbb", "1/d", 0.3, 0.01, 10.0, "assumed (barrier repair over days)",
       "blood–brain-barrier repair rate", 0.2, "inflam"),
    _p("K_bbb", "–", 3.5, 0.01, 100.0,
       "assumed; hand-tuned with k_en on the merged session-4 model (ICANS rows of ELIANA, "
       "ZUMA-1, ZUMA-4); session 26: 3 -> 3.5 with the mural route (w_mural), which opens "
       "the barrier at a lower endothelial activation while effector CAR-T circulate",
       "endothelial activation for half-maximal BBB disruption (Hill 4: a threshold)", 0.4,
       "inflam"),
    # ---- on-target, off-tumour: CD19 on the brain's mural cells (pericytes) ----
    _p("mural_cd19", "relative density", 0.05, 0.0, 1.0,
       "assumed size (CD19 transcripts and perivascular CD19 protein in human brain mural "
       "cells, at a far lower level than on B cells: Parker 2020 Cell 183:126); relative to "
       "the median B-ALL blast CD19, the scale of K_antigen",
       "CD19 density on brain mural cells (pericytes), relative to the median B-ALL blast",
       0.0, "inflam"),
    _p("w_mural", "–", 1.5, 0.0, 10.0,
       "assumed size; direction: CD19-expressing mural cells of the human brain (Parker "
       "2020 Cell 183:126), loss of capillary pericyte coverage in an immunocompetent mouse "
       "model of CAR-T neurotoxicity (PMC8833245), and the CD28 product's ICANS excess at "
       "comparable CRS in matched real-world LBCL cohorts (axi-cel vs tisa-cel "
       "neurotoxicity 32.2 vs 9.9 %, CART-SIE, Blood Cancer Discov 2024; ICANS grades 1-2 "
       "and >= 3 both more frequent, DESCAR-T, Bachy 2022 Nat Med). Hand-tuned with K_bbb, "
       "bbb_age_exp and cd28_K_antigen_x, session 26, on the neurotoxicity rows of ten "
       "studies (cartsim validate --studies eliana,chop_ctl019_pilot,nci_cd19_28z,zuma4,"
       "zuma1,mskcc_19_28z,scri_plat02,cns_qi2022,dai_cd19_cd22_ball,wei_cd19_cd22_bnhl, "
       "lymphoma escape density 0.05: deviance 343.6 -> 337.6; 2.5 with K_bbb 3.5 and the "
       "old age law gave 384.0; docs/validation.md 'Session 26')",
       "fraction by which effector CAR-T engaging every mural cell lower the endothelial "
       "activation that opens the BBB: K_bbb' = K_bbb/q(age)^b × (1 − min(m, 0.9)), m = "
       "w_mural × engagement(mural_cd19) × C/(C + K_mural_car), C the blood effector CAR-T "
       "per µL; 0 = no mural route",
       0.0, "inflam"),
    _p("K_mural_car", "cells/µL", 50.0, 0.01, 1e5,
       "assumed (the order of a LBCL patient's CAR-T peak in blood: real-world axi-cel "
       "median 16/µL, clinical_targets.csv line 423; the model's ZUMA-1 median 44/µL), so an "
       "adult's expansion about half-saturates the attack and a child's leukaemia-driven "
       "expansion (hundreds to thousands/µL) saturates it",
       "blood effector CAR-T per µL for half-maximal attack on mural cells", 0.0, "inflam"),
    # ---- CNS leukaemia: CAR-T killing inside the CNS inflames it locally (session 40) ----
    _p("k_enc_cns", "1/d", 3.0, 0.0, 20.0,
       "structure: CAR-T cells that reach CNS leukaemia kill it in the leptomeninges and CSF, "
       "where the cytokines of the kill act on the brain without crossing the barrier; CNS "
       "disease goes with severe neurotoxicity (grade 3-4 in 4 of 5 children with CSF blasts "
       "> 5/uL or an intracranial mass, Tan 2021, clinical_targets.csv line 351; 22.9 % in "
       "48 patients with CNS leukaemia, Qi 2022, line 364). Size hand-tuned with K_cns_kill "
       "(session 40) on the neurotoxicity rows of the library's studies with overt CNS "
       "disease (Qi 2022, SCRI PLAT-02, CHOP pilot, NCI CD19-28z; docs/validation.md "
       "'Session 40'). 0 = no local route (the model before session 40)",
       "maximal rate of encephalopathy driven by CAR-T kills in the CNS (B-ALL sanctuary "
       "site) in patients with overt CNS disease: dENC/dt += k_enc_cns × K⁴/(K⁴ + "
       "K_cns_kill⁴), K the sanctuary kills per day (Hill 4: the upper tail of CNS kills "
       "drives it, the median CNS kill little)",
       0.3, "inflam"),
    _p("K_cns_kill", "cells/d", 2.5e8, 1.0, 1e12,
       "assumed order (the peak CNS kill of the model's overt CNS leukaemia: "
       "cns_overt_cells 1e9 is cleared over one to two weeks, its largest one-day fall, a "
       "lower bound of the peak kill, a median 1.2e8 and a 90th percentile 3.9e8 cells/d in "
       "the simulated Qi 2022 cohort, so the upper tail of CNS kills half-saturates the "
       "drive); hand-tuned with k_enc_cns (session 40)",
       "CAR-T kills per day in the CNS for half-maximal local encephalopathy drive", 0.0,
       "inflam"),
    # ---- age: the endothelium and the blood–brain barrier of an adult are more vulnerable ----
    _p("en_age_per_decade", "1/decade", 0.05, 0.0, 2.0,
       "assumed size, direction and scale from the age rise of endothelial activation markers: "
       "von Willebrand factor +18 IU/dL per decade (≈ 15–20 % of the mean) after 40 y "
       "(Biguzzi 2021 Thromb Res, MEGA study), flow-mediated dilatation declining with age "
       "(Celermajer 1994 JACC); pre-lymphodepletion endothelial activation (Ang-2:Ang-1) "
       "predicts severe neurotoxicity (Gust 2017 Cancer Discov); hand-tuned with bbb_age_exp "
       "against the CRS/neurotoxicity rows of ELIANA, ZUMA-1, ZUMA-4 and NCI CD19-28z "
       "(cartsim validate, 60/arm, session 5; 0.15 tipped the typical 58-year-old LBCL "
       "patient into self-sustained endothelial activation); 0 = no age dependence",
       "fractional rise of the endothelial activation rate per decade of age above "
       "en_age_ref_y: k_en × (1 + en_age_per_decade · max(age − en_age_ref_y, 0)/10)",
       0.0, "inflam"),
    _p("en_age_ref_y", "y", 20.0, 0.0, 100.0,
       "assumed (the markers above are flat through childhood and rise in adulthood)",
       "age above which endothelial vulnerability rises", 0.0, "inflam"),
    _p("bbb_age_exp", "–", 0.4, 0.0, 5.0,
       "assumed exponent; the age law is the upper reference limit of the CSF/serum albumin "
       "quotient, Q_alb = (4 + age/15)·10⁻³ = 4·10⁻³·(1 + age/60) (Reiber 1994 J Neurol Sci; "
       "≈ 4–5 at 1–15 y, 5–8 at 15–60 y, 8–10 above 60 y), and BBB breakdown with normal "
       "ageing (Montagne 2015 Neuron); exponent hand-tuned with en_age_per_decade (same "
       "rows; candidates 1.0, 0.75 and "
       "1.5 with bbb_age_ref_y 30; 1.0 over-called ZUMA-1 ICANS ≥ 3, 40 % vs 28 %; 1.5 "
       "under-called ZUMA-4's children, 8 % vs 21 %); session 26: 0.75 -> 0.4 with the "
       "mural route, which carries part of the adult CD28 products' ICANS that age carried; "
       "0 = no age dependence",
       "exponent of the baseline barrier leakiness q(age) = (1 + age/60)/(1 + bbb_age_ref_y/60) "
       "that lowers the endothelial activation needed to open the BBB: "
       "K_bbb / q(age)^bbb_age_exp", 0.0, "inflam"),
    _p("bbb_age_ref_y", "y", 20.0, 0.0, 100.0, "assumed (K_bbb holds at this age)",
       "age at which the BBB threshold is K_bbb", 0.0, "inflam"),
    _p("nfl_base", "pg/mL", 10.0, 0.0, 1e3, "typical adult serum NfL (Simoa) ≈ 5–20 pg/mL",
       "baseline serum neurofilament light", 0.3, "inflam"),
    _p("k_nfl", "pg/mL/d", 8.0, 0.0, 1e4, "assumed (serum NfL tracks ICANS severity; review A16)",
       "NfL release per unit encephalopathy", 0.3, "inflam"),
    _p("d_nfl", "1/d", 0.033, 0.001, 1.0, "assumed (serum NfL half-life ≈ 3 weeks)",
       "NfL clearance", 0.0, "inflam"),
    _p("k_enc", "1/d", 7.0, 0.0, 50.0, "assumed (fully open BBB: E → k_enc / d_enc = 17.5, "
       "ICE 0)", "encephalopathy onset rate per unit BBB disruption", 0.5, "inflam"),
    _p("d_enc", "1/d", 0.4, 0.01, 10.0, "assumed (ICANS resolves over days)",
       "encephalopathy recovery rate", 0.2, "inflam"),
    _p("K_fever", "pg/mL", 25.0, 0.01, 1e5, "assumed (fever at IL-6 tens of pg/mL)",
       "IL-6 signal for half-maximal fever", 0.3, "inflam"),
    _p("map_drop", "–", 0.65, 0.0, 0.9, "assumed (vasoplegia can be refractory)",
       "maximal fractional MAP fall", 0.0, "inflam"),
    _p("K_map", "–", 1.6, 0.01, 100.0, "assumed", "endothelial activation for half MAP drop",
       0.3, "inflam"),
    _p("K_ox", "–", 1.85, 0.01, 100.0,
       "assumed; hand-tuned with spo2_hill against the ELIANA+ENSIGN oxygen and intubation "
       "among-CRS rows (calibration set), cartsim validate, session 16 (2 before)",
       "endothelial activation for half SpO₂ fall",
       0.3, "inflam"),
    _p("spo2_drop_max", "%", 50.0, 1.0, 60.0,
       "assumed (to 48 % on room air: the hypoxaemia of ARDS-like capillary leak); the ceiling "
       "of 24 points used before session 16 (74 % on room air) never reached the BiPAP or "
       "ventilation rungs of the protocols' oxygen ladder, so no simulated patient was ever "
       "ventilated; hand-tuned with spo2_hill and K_ox, session 16",
       "maximal leak-driven room-air SpO₂ fall (readout; the clinic's oxygen ladder reads it)",
       0.0, "inflam"),
    _p("spo2_hill", "–", 6.0, 1.0, 8.0,
       "assumed steepness (the lung stays dry until the leak exceeds the lymphatic drainage "
       "reserve, then oedema floods it); hand-tuned with K_ox against the ELIANA+ENSIGN oxygen "
       "(50 %) and intubation (17 %) among-CRS rows (calibration set), cartsim validate, "
       "session 16; 3 before",
       "Hill exponent of the SpO₂ fall in endothelial activation", 0.0, "inflam"),
)


@numba.njit(inline="always")
def il6_signal(il6: float, occ_toci: float, occ_silt: float) -> float:
    return max(il6, 0.0) * (1.0 - occ_toci) * (1.0 - occ_silt)


@numba.njit(inline="always")
def derivs(
    y: np.ndarray,
    p: np.ndarray,
    dy: np.ndarray,
    kills: float,
    engaged: float,
    toci_occupancy: float,
    silt_occupancy: float,
    steroid_effect: float,
    anakinra_effect: float,
    cyto_competence: float,
    kill_hs: float,
) -> None:
    # amounts per day over the plasma volume: concentrations do not depend on body size
    vol = p[P.plasma_ml]
    k9 = kills * 1e-9
    e9 = engaged * 1e-9
    k9_l = k9 * 1e3 / vol  # 10⁹ kills/d per litre of plasma
    e9_l = e9 * 1e3 / vol  # 10⁹ engaged CAR-T per litre of plasma
    il6, ifng, il1 = max(y[S.IL6], 0.0), max(y[S.IFNG], 0.0), max(y[S.IL1], 0.0)
    my, en, enc = max(y[S.MY], 0.0), max(y[S.EN], 0.0), y[S.ENC]
    bbb = min(max(y[S.BBB], 0.0), 1.0)
    cyto = 1.0 - p[P.ster_cyto] * steroid_effect
    anak = 1.0 - p[P.anak_my] * anakinra_effect
    dy[S.IL6] = (
        p[P.d_il6] * p[P.il6_base]
        + (p[P.p_il6] * k9 / vol * (1.0 + p[P.a_my] * my) + p[P.p_il6_my] * my) * cyto
        - p[P.d_il6] * (1.0 - p[P.toci_clear_frac] * toci_occupancy) * y[S.IL6]
    )
    dy[S.IFNG] = p[P.p_ifng] * e9 / vol * cyto - p[P.d_ifng] * y[S.IFNG]
    dy[S.IL1] = p[P.p_il1] * my * cyto - p[P.d_il1] * y[S.IL1]
    f_ifng = ifng / (ifng + p[P.K_ifng])
    damp = k9_l / (k9_l + p[P.K_my_kill])
    # Hill 2: a few engaged cells do not keep myeloid cells activated (no chronic fever);
    # the expansion peak does. (Since session 20 the engaged count is the tumour-engaged
    # effectors only, killing.py w_b_engaged_inflam: those keeping B-cell aplasia are out.)
    # the engaged effectors' CD40L/GM-CSF signal to myeloid cells scales with their
    # competence (cart.py QC: highest in the freshly infused product, so CRS can start at
    # the first antigen encounters, days before the expansion peak)
    e9_my = e9_l * cyto_competence
    contact = e9_my * e9_my / (e9_my * e9_my + p[P.K_my_car] ** 2)
    s_il1 = il1 * anak  # anakinra blocks the IL-1 receptor
    f_il1 = s_il1 / (s_il1 + p[P.K_il1])
    # IL-1 re-induces myeloid activation only in primed cells: the gate follows the primary
    # stimulus, so the IL-1 loop amplifies a CRS with a cause and dies out with it
    prim = f_ifng + damp + contact
    # (a Hill switch since session 19: the trickle that B-cell aplasia keeps does not prime;
    # n = 1 is the Michaelis-Menten gate before it, x ** 1.0 == x exactly)
    k_prime = p[P.K_il1_prime]
    n_prime = p[P.n_il1_prime]
    pn = prim ** n_prime
    prime = pn / (pn + k_prime ** n_prime) if k_prime > 0.0 else 1.0
    # activation-induced tolerance: activated monocytes/macrophages become refractory to
    # re-stimulation (TLR/IL-1 cross-tolerance), so the stimuli that started CRS, and the IL-1
    # loop they gate, stop re-activating them while CAR-T cells are still numerous
    tol = min(max(y[S.MYTOL], 0.0), 1.0)
    # (tol = 0: the factor is exactly 1, the model before it)
    dy[S.MY] = (
        p[P.k_my] * (prim + f_il1 * prime) * (1.0 - tol)
        * (1.0 - p[P.ster_my] * steroid_effect) * anak
        - p[P.d_my] * y[S.MY]
    )
    dy[S.MYTOL] = p[P.k_my_tol] * my * (1.0 - tol) - p[P.d_my_tol] * y[S.MYTOL]
    sig = il6_signal(il6, toci_occupancy, silt_occupancy)
    age = p[P.age_y]
    age_en = 1.0 + p[P.en_age_per_decade] * max(age - p[P.en_age_ref_y], 0.0) * 0.1
    # baseline barrier leakiness grows with age as the CSF/serum albumin quotient (Reiber)
    q_bbb = ((1.0 + age / 60.0) / (1.0 + p[P.bbb_age_ref_y] / 60.0)) ** p[P.bbb_age_exp]
    bbb_half = p[P.K_bbb] / q_bbb
    en2 = en * en
    # the self-amplification loses the share that runs through endothelial IL-6
    # trans-signalling as far as tocilizumab or siltuximab block IL-6 signalling (share 0, or
    # no drug: the factor is exactly 1)
    blocked = 1.0 - (1.0 - toci_occupancy) * (1.0 - silt_occupancy)
    amp = p[P.a_ang] * en2 / (en2 + p[P.K_ang] ** 2) * (1.0 - p[P.ang_il6_share] * blocked)
    cause = sig / (sig + p[P.K_en_il6]) + p[P.w_ifng_en] * f_ifng + p[P.w_il1_en] * f_il1
    # the angiopoietin-2 loop amplifies an activation that has a cytokine cause and fades with
    # it (ang_gate 0: ungated, exactly the model before session 42)
    kg = p[P.ang_gate]
    if kg > 0.0:
        amp = amp * cause * cause / (cause * cause + kg * kg)
    drive_en = cause + amp
    dy[S.EN] = (p[P.k_en] * age_en * drive_en * (1.0 - p[P.ster_en] * steroid_effect)
                - p[P.d_en] * y[S.EN])
    en4 = en2 * en2
    # on-target, off-tumour: effector CAR-T in blood engage the CD19-low mural cells of the
    # barrier (Parker 2020) as far as the construct engages so little antigen (Majzner 2020)
    # lose mural support: the endothelial activation that opens the barrier falls
    if p[P.w_mural] > 0.0:
        c_e = max(y[S.E_b], 0.0) / p[P.blood_ul]
        mural = (p[P.w_mural] * engagement(p, p[P.mural_cd19], 0.0, 0.0)
                 * c_e / (c_e + p[P.K_mural_car]))
        bbb_half = bbb_half * (1.0 - min(mural, 0.9))
    dy[S.BBB] = (p[P.k_bbb] * en4 / (en4 + bbb_half ** 4) * (1.0 - bbb)
                 * (1.0 - p[P.ster_en] * steroid_effect) - p[P.d_bbb] * y[S.BBB])
    # overt CNS leukaemia (B-ALL's sanctuary site is the CNS; in lymphoma it holds the poorly
    # reached nodal lesions): CAR-T kills in the CSF and leptomeninges inflame the brain
    # directly; the occult seeding every B-ALL carries does not (no leptomeningeal disease).
    # k_enc_cns 0: exactly the model before session 40
    drive_enc = p[P.k_enc] * bbb
    if p[P.k_enc_cns] > 0.0 and p[P.disease_lbcl] == 0.0 and p[P.cns_disease] > 0.0:
        kc = kill_hs * max(y[S.TS], 0.0)
        kc4 = (kc * kc) ** 2
        drive_enc = drive_enc + p[P.k_enc_cns] * kc4 / (kc4 + p[P.K_cns_kill] ** 4)
    dy[S.ENC] = drive_enc * (1.0 - p[P.ster_enc] * steroid_effect) * (
        1.0 - p[P.anak_enc] * anakinra_effect) - p[P.d_enc] * enc
    dy[S.NFL] = p[P.k_nfl] * max(enc, 0.0) + p[P.d_nfl] * (p[P.nfl_base] - y[S.NFL])


MECHANISM = Mechanism(
    name="inflammation",
    module=__name__,
    summary="IL-6, IFN-γ, IL-1, myeloid activation, endothelium, BBB, encephalopathy and NfL",
    states=(
        StateSpec("IL6", "pg/mL", "serum IL-6"),
        StateSpec("IFNG", "pg/mL", "serum IFN-γ"),
        StateSpec("MY", "–", "myeloid activation"),
        StateSpec("EN", "–", "endothelial activation"),
        StateSpec("ENC", "–", "encephalopathy state"),
        StateSpec("IL1", "pg/mL", "serum IL-1 (myeloid IL-1β)"),
        StateSpec("BBB", "–", "blood–brain-barrier disruption (fraction 0–1)"),
        StateSpec("NFL", "pg/mL", "serum neurofilament light", initial=10.0),
        StateSpec("MYTOL", "–", "myeloid tolerance (fraction of myeloid re-activation blocked)"),
    ),
    params=PARAMS,
    kernels=(Kernel(derivs, consumes=("kills", "engaged", "toci_occupancy", "silt_occupancy",
                                      "steroid_effect", "anakinra_effect", "cyto_competence",
                                      "kill_hs")),),
)
