"""deploy_freeze's SSM parameter names: the rules AWS documents for PutParameter's Name, and no '..' segment."""

from __future__ import annotations

import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import deploy_freeze as df


@pytest.mark.parametrize(
    "name",
    [
        "/firebreak/deploy-freeze",
        "deploy-freeze",
        "/Dev/Production/East/Project-ABC/MyParameter",
        "/a_b.c-d/E9",
        "/" + "/".join(f"L{n}" for n in range(1, 15)) + "/name",  # 15 levels
        "/" + "x" * 1010,
        "/team-aws/flag",  # aws inside a name is fine, only at its start is it reserved
    ],
)
def test_names_aws_would_create_are_accepted(name):
    assert df.parameter_name_problem(name) is None
    df.validate([], [], name)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../etc/x", "fully qualified, with a leading '/' (/../etc/x)"),
        ("firebreak/freeze", "fully qualified, with a leading '/' (/firebreak/freeze)"),
        ("/firebreak/../etc/x", "the path segment '..' is not allowed"),
        ("/firebreak/./x", "the path segment '.' is not allowed"),
        ("/firebreak//x", "the path segment '' is not allowed"),
        ("/firebreak/x/", "the path segment '' is not allowed"),
        ("/", "the path segment '' is not allowed"),
        ("/fire break", "characters ' ' are not allowed"),
        ("/flag$@", "characters '$@' are not allowed"),
        ("/ü", "characters 'ü' are not allowed"),
        ("/" + "/".join(f"L{n}" for n in range(1, 16)) + "/name", "16 levels, AWS allows at most 15"),
        ("/" + "x" * 1011, "1012 characters, AWS allows at most 1011"),
        ("aws-flag", "cannot begin with 'aws' or 'ssm'"),
        ("SSM-flag", "cannot begin with 'aws' or 'ssm'"),
        ("/AWS/service/x", "cannot begin with 'aws' or 'ssm'"),
        ("/ssmflag", "cannot begin with 'aws' or 'ssm'"),
    ],
)
def test_names_aws_refuses_or_that_climb_are_refused_naming_the_value_and_the_rule(name, why):
    with pytest.raises(df.DeployFreezeError) as err:
        df.validate([], [], name)
    assert f"invalid SSM parameter name {name!r}: " in str(err.value)
    assert why in str(err.value)
