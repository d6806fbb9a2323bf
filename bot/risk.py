"""Risk classes (分类分级, DOMAIN.md): type from who guards the child, level from harm, with reasons."""
from __future__ import annotations

from models import Child

TYPE_BY_GUARDIANSHIP = {"unattended": 1, "one_parent_incapable": 1, "relatives": 2, "grandparents": 3}


def risk_type(child: Child) -> int:
    """Type 1: no parent, grandparent or relative guards; 2: another relative; 3: grandparents."""
    return TYPE_BY_GUARDIANSHIP.get(child.guardianship_type, 1)
