"""README.md is the entry point users copy commands from: keep it whole and its references real.

These checks exist because a scripted edit once left a section inside an HTML comment (invisible on
GitHub) and another section twice.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text()


def _prose(text: str) -> str:
    """The README without its fenced code blocks (a '#' there is a shell comment, not a heading)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)


def test_readme_opens_with_the_two_setup_commands(readme: str) -> None:
    first_block = re.search(r"^```bash\n(.*?)^```", readme, flags=re.DOTALL | re.MULTILINE)
    assert first_block is not None, "README.md has no ```bash block"
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make train-synthetic", "make test"]
    setup = readme.index("\n## Set-up")
    next_section = readme.index("\n## ", setup + 1)
    assert setup < first_block.start() < next_section, "the two commands must open README's set-up section"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.MULTILINE), (
        ".ci/run must call `make test` (README's command)"
    )


def test_readme_has_no_html_comments_and_no_repeated_headings(readme: str) -> None:
    prose = _prose(readme)
    assert "<!--" not in prose and "-->" not in prose, "an HTML comment hides README text on GitHub"
    sections: list[str] = []  # "## Section" or "## Section / ### Subsection"
    parent = ""
    for heading in re.findall(r"^(#{1,4} .+)$", prose, flags=re.MULTILINE):
        if heading.startswith("### "):
            sections.append(f"{parent} / {heading}")
        else:
            parent = heading
            sections.append(heading)
    repeated = sorted({s for s in sections if sections.count(s) > 1})
    assert not repeated, f"README.md sections that appear twice: {repeated}"


def test_readme_paths_exist(readme: str) -> None:
    """Every repository file README names (configs, benchmarks, notebooks, package modules, images)."""
    pattern = r"(?<![\w/.-])((?:configs|benchmarks|notebooks|docs|s2dm_lightning)/[\w./-]+\.(?:py|yaml|ipynb|md|png|gif|json))"
    named = set(re.findall(pattern, readme))
    assert len(named) > 10, "the pattern no longer finds README's file references"
    placeholders = {p for p in named if Path(p).stem.isupper()}  # e.g. configs/NAME.yaml
    missing = sorted(p for p in named - placeholders if not (ROOT / p).exists())
    assert not missing, f"README.md names files that do not exist: {missing}"


def test_readme_links_resolve(readme: str) -> None:
    anchors = {_anchor(h) for h in re.findall(r"^#{1,4} (.+)$", _prose(readme), flags=re.MULTILINE)}
    for target in re.findall(r"\]\(([^)\s]+)\)", readme):
        if target.startswith(("http://", "https://")):
            continue
        if target.startswith("#"):
            assert target[1:] in anchors, f"README.md links to #{target[1:]}, which is no heading"
        else:
            assert (ROOT / target.split("#")[0]).exists(), f"README.md links to missing file {target}"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
