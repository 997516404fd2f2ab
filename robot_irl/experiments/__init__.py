"""Experiments that reproduce a paper's claim end to end in simulation (collect, train, evaluate, report).

* :mod:`~robot_irl.experiments.adc`  ``robot-irl experiment adc``: BC on traditional vs adversarially collected
  (ADC) data, evaluated with and without held-out perturbations.
"""
