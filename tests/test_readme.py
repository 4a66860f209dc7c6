"""README.md is the entry point users copy commands from: keep it whole and its references real.

These checks exist because a scripted edit once left a section inside an HTML comment (invisible on
GitHub) and another section twice.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]


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


def test_readme_is_a_landing_page(readme: str) -> None:
    """README stays short (what it is, how to start, one picture, links); topics live in docs/."""
    assert len(readme.splitlines()) <= 200, "README.md grew past 200 lines: move the topic to a docs/ page"
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)", readme))
    unlinked = sorted(str(p.relative_to(ROOT)) for p in DOCS if str(p.relative_to(ROOT)) not in linked)
    assert not unlinked, f"docs pages README does not link: {unlinked}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_have_no_html_comments(page: Path) -> None:
    prose = _prose(page.read_text())
    assert "<!--" not in prose and "-->" not in prose, f"an HTML comment hides text of {page.name} on GitHub"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_readme_paths_exist(page: Path) -> None:
    """Every repository file a page names (configs, benchmarks, notebooks, package modules, images)."""
    readme = page.read_text()
    pattern = r"(?<![\w/.-])((?:configs|benchmarks|notebooks|docs|s2dm_lightning)/[\w./-]+\.(?:py|yaml|ipynb|md|png|gif|json))"
    named = set(re.findall(pattern, readme))
    if page == README:
        assert len(named) > 10, "the pattern no longer finds README's file references"
    placeholders = {p for p in named if Path(p).stem.isupper()}  # e.g. configs/NAME.yaml
    missing = sorted(p for p in named - placeholders if not (ROOT / p).exists())
    assert not missing, f"{page.name} names files that do not exist: {missing}"


def _anchors(page: Path) -> set[str]:
    return {_anchor(h) for h in re.findall(r"^#{1,4} (.+)$", _prose(page.read_text()), flags=re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_readme_links_resolve(page: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        file_part, _, fragment = target.partition("#")
        linked = page if not file_part else (page.parent / file_part).resolve()
        assert linked.exists(), f"{page.name} links to missing file {target}"
        if fragment and linked.suffix == ".md":
            assert fragment in _anchors(linked), f"{page.name} links to {target}, which is no heading"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
