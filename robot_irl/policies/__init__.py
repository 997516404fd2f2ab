"""Policies (scripted, random, learned) and their registry, filled here and only here."""
from __future__ import annotations

from robot_irl.core.contracts import Policy
from robot_irl.core.registry import Registry

POLICIES: Registry[type[Policy]] = Registry("policy")
POLICIES.register("random", "robot_irl.policies.scripted:RandomPolicy")
POLICIES.register("scripted", "robot_irl.policies.scripted:ScriptedPolicy")
POLICIES.register("scripted_operator", "robot_irl.collect.operators:ScriptedOperator")  # reactive, follows the task
