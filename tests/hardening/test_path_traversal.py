"""Point 3: one ``safe_join`` guards every user-given name; traversal strings never reach outside.

Hypothesis builds traversal strings from the spellings attackers use (``..``, ``%2e%2e``,
double encoding, fullwidth dots, overlong UTF-8, backslashes, drive letters, UNC, NUL) and
the tests check that no name resolves, or opens, anything outside the allowed root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gambarkan.errors import GambarkanError
from gambarkan.paths import UnsafePathError, safe_join

PIECES = [
    "..", ".", "%2e%2e", "%2E%2E", "%252e%252e", "..%2f", "%2e%2e%2f", "%c0%ae%c0%ae", "%c0%af", "．．", "\uff0e\uff0e",
    "..\\", "\\", "/", "//", "C:", "c:\\", "\\\\server\\share", "\x00", "%00", "~", "~root", "\n", "a", "sub", "secret.safetensors",
    "x.png", "lora.safetensors", "..;", ".../", "....//", "%5c",
]  # fmt: skip
HOSTILE = st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join) | st.lists(
    st.sampled_from(PIECES), min_size=1, max_size=6
).map("/".join)
NAMES = HOSTILE | st.text(min_size=1, max_size=40) | st.text(st.characters(categories=["Cs"]) | st.sampled_from("./%\\"), min_size=1, max_size=8)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _inside(path: Path, root: Path) -> bool:
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """A root with a symlink that points outside it, and a secret file beside it."""
    base = tmp_path / "root"
    (base / "sub").mkdir(parents=True)
    (tmp_path / "secret.safetensors").write_bytes(b"secret")
    (base / "escape").symlink_to(tmp_path)
    return base


@FAST
@given(name=NAMES)
def test_safe_join_never_leaves_root(root: Path, name: str) -> None:
    try:
        path = safe_join(root, name)
    except UnsafePathError as exc:
        assert exc.http_status == 400 and "\n" not in str(exc)
        return
    assert _inside(path, root), (name, path)
    assert path != Path(os.path.realpath(root))


@pytest.mark.parametrize(
    "name",
    ["../secret.safetensors", "%2e%2e/secret.safetensors", "%252e%252e%252fsecret.safetensors", "．．/secret.safetensors",
     "%c0%ae%c0%ae/secret.safetensors", "..\\secret.safetensors", "/etc/passwd", "C:\\Windows\\win.ini", "\\\\host\\share\\x",
     "sub/../../secret.safetensors", "a\x00.png", "escape/secret.safetensors", "sub/..", "", "x" * 5000],
)  # fmt: skip
def test_known_traversals_are_refused(root: Path, name: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_join(root, name)


def test_plain_names_work(root: Path) -> None:
    assert safe_join(root, "sub/a.png") == Path(os.path.realpath(root)) / "sub" / "a.png"
    assert safe_join(root, "kucing lucu.safetensors").name == "kucing lucu.safetensors"


@pytest.fixture()
def lora_root(tmp_path: Path) -> Path:
    """A LoRA folder with one valid file, and a valid-looking LoRA outside it that must stay unreachable."""
    import numpy as np
    from safetensors.numpy import save_file

    base = tmp_path / "loras"
    (base / "sub").mkdir(parents=True)
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(base / "sub" / "inside.safetensors"))
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(tmp_path / "secret.safetensors"))
    (base / "escape").symlink_to(tmp_path)
    return base


@FAST
@given(name=HOSTILE | HOSTILE.map(lambda s: s + ".safetensors"))
def test_lora_names_never_open_outside_the_lora_folders(lora_root: Path, name: str) -> None:
    from gambarkan.models.loras import find

    try:
        found = find(name, [lora_root])
    except GambarkanError as exc:
        assert exc.http_status in (400, 404, 422), exc
        return
    assert _inside(found.path, lora_root), (name, found.path)


def test_lora_tag_with_traversal_is_one_clean_error(lora_root: Path, tmp_path: Path) -> None:
    from gambarkan.models.loras import resolve_loras

    for tag in ("<lora:../secret.safetensors:1>", "<lora:escape/secret.safetensors:1>", f"<lora:{tmp_path}/secret.safetensors:1>"):
        with pytest.raises(GambarkanError) as info:
            resolve_loras(f"kucing {tag}", [lora_root])
        assert "secret" not in str(getattr(info.value, "path", "")), tag
    assert resolve_loras("kucing <lora:sub/inside.safetensors:0.5>", [lora_root])[0][0].name == "inside"
