"""The life of a staff account (host/records/employees.py) on both stores: the disabled flag of the
0016_user_lifecycle step (PostgreSQL 0011_user_lifecycle), each change ending the user's sessions,
the last admin kept, the Change Log written."""

from __future__ import annotations

import pytest

from host.errors import HostError
from host.records import audit, employees, users

PASSWORD = "correct horse battery staple"


def test_disable_enable_role_remove_and_own_password_on_both_stores(store):
    employees.add(store, "cli:root", "ann", "admin", PASSWORD)
    walt = employees.add(store, "ann", "walt", "warehouse", PASSWORD)
    assert users.authenticate(store, "walt", PASSWORD, address="a") is not None
    disabled = employees.set_disabled(store, "ann", "walt", True)
    assert disabled.disabled and disabled.session_version == walt.session_version + 1
    assert users.authenticate(store, "walt", PASSWORD, address="b") is None
    assert [row["disabled"] for row in users.list_users(store) if row["name"] == "walt"] == [True]
    employees.set_disabled(store, "ann", "walt", False)
    assert users.authenticate(store, "walt", PASSWORD, address="c") is not None
    assert employees.set_role(store, "ann", "walt", "support").role == "support"
    with pytest.raises(HostError, match="last admin who can sign in"):
        employees.set_role(store, "walt", "ann", "support")
    with pytest.raises(HostError, match="last admin who can sign in"):
        employees.set_disabled(store, "walt", "ann", True)
    ann = users.get_user_by_name(store, "ann")
    with pytest.raises(HostError, match="current password is not right"):
        employees.change_own_password(store, ann, "wrong one", "a new long password")
    changed = employees.change_own_password(store, ann, PASSWORD, "a new long password")
    assert changed.session_version == ann.session_version + 1
    employees.remove(store, "ann", "walt")
    assert [row["name"] for row in users.list_users(store)] == ["ann"]
    assert [(e["actor"], e["action"], e["target"]) for e in reversed(audit.entries(store))] == [
        ("cli:root", "employee added", "ann"),
        ("ann", "employee added", "walt"),
        ("ann", "employee disabled", "walt"),
        ("ann", "employee enabled", "walt"),
        ("ann", "employee role changed", "walt"),
        ("ann", "own password changed", "ann"),
        ("ann", "employee removed", "walt"),
    ]
