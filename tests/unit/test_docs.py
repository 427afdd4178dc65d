from pathlib import Path

from pydantic import AliasChoices

from promptlab.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "reference" / "configuration.md").read_text()


def env_names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.append(f"PROMPTLAB_{name.upper()}")
        elif isinstance(alias, str):
            names.append(alias)
        elif isinstance(alias, AliasChoices):
            names.append(str(alias.choices[0]))
    return names


def test_the_configuration_reference_names_every_setting() -> None:
    missing = [name for name in env_names() if f"`{name}`" not in CONFIGURATION]
    assert missing == []


def test_the_readme_stays_short_and_the_docs_site_is_current() -> None:
    import subprocess
    import sys

    # What it is, the two commands, the walk-through, where to go next; the rest is in docs/
    assert len(README.splitlines()) <= 250
    checked = subprocess.run([sys.executable, "-m", "tools.docs", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout  # "run ./dev docs" when a generated page is stale


def test_the_repository_cites_nothing_outside_it() -> None:
    import re
    import subprocess

    # The design document and the issue tracker live outside the repository: docs and comments explain
    # decisions in their own words instead of pointing there.
    outside = re.compile(r"DESIGN" + r"\.md|[Ii]ssue #?[0-9]+")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    cited = [
        f"{name}:{number}"
        for name in files
        if not name.endswith((".png", ".svg", ".lock", ".ico"))
        for number, line in enumerate((ROOT / name).read_text(errors="ignore").splitlines(), start=1)
        if outside.search(line)
    ]
    assert cited == [], "say it in the repository's own words: " + ", ".join(cited[:10])


def test_no_module_grows_past_350_lines() -> None:
    # A module past this has more than one concern in it: split it along the seam.
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in (ROOT / "layers" / "promptlab" / "promptlab").rglob("*.py")
    }
    assert {name: size for name, size in sizes.items() if size > 350} == {}


def test_every_example_is_run_by_a_test_or_says_why_not() -> None:
    """A shell or Python block in the README or the docs sits under an `<!-- examples: run by <file> -->` line
    (that file runs the page's blocks, and names the page) or an `<!-- examples: not run (why) -->` line; a
    heading ends a marker's reach."""
    import re

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    problems = []
    for page in pages:
        marker: str | None = None
        fenced = False
        for number, text in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
            opening = not fenced and text.startswith("```")
            fenced = fenced != text.startswith("```")
            if fenced and not opening:
                continue
            if text.startswith("#"):
                marker = None
            elif found := re.match(r"<!-- examples: (.*) -->$", text):
                marker = found.group(1)
            elif opening and re.match(r"^```(bash|sh|python|console)\s*$", text):
                where = f"{page.relative_to(ROOT)}:{number}"
                if marker is None:
                    problems.append(f"{where}: no `<!-- examples: … -->` line says which test runs it")
                elif marker.startswith("run by "):
                    runner = ROOT / marker.removeprefix("run by ")
                    if not runner.is_file() or page.name not in runner.read_text(encoding="utf-8"):
                        problems.append(f"{where}: {runner.relative_to(ROOT)} does not run {page.name}")
                elif not re.match(r"not run \(.+\)$", marker):
                    problems.append(f"{where}: say `run by <file>` or `not run (why)`")
    assert problems == []
