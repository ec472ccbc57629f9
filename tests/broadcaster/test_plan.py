"""Plan 143 as data: the shipped plan.yaml loads against the default agencies, a broken plan file is reported
at its line, and campaign files' ``plan_item`` must name one of its items."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from broadcaster.campaigns.files import ProviderInfo, load_campaign_file, validate_paths
from broadcaster.campaigns.plan import Frequency, PlanError, load_plan, plan_from_settings
from broadcaster.settings import Settings
from broadcaster.settings_sections import AgencySettings
from channels.social.facebook import FacebookPageAdapter
from tests.broadcaster.conftest import write_campaign

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "campaigns" / "plan-143" / "plan.yaml"
PROVIDERS = {
    "sms_main": ProviderInfo("sms_main", "sms"),
    "mail": ProviderInfo("mail", "email"),
    "app_danang": ProviderInfo("app_danang", "push"),
    "fanpage_skhcn": ProviderInfo(
        "fanpage_skhcn",
        "social",
        capabilities=FacebookPageAdapter.capabilities,
        targets=frozenset({"100000000000143"}),
    ),
}
AGENCIES = Settings().agencies


def broken(tmp_path: Path, old: str, new: str) -> Path:
    """The shipped plan with one text replaced (it must occur)."""
    text = PLAN.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "plan.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_with(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def test_the_shipped_plan_loads_with_the_default_agencies() -> None:
    plan, problems = load_plan(PLAN, agencies=AGENCIES)
    assert problems == []
    assert plan is not None
    assert plan.plan == "143/KH-UBND"
    assert plan.item_ids == [
        "III.1", "III.2", "III.3", "III.4", "III.5.a", "III.5.b", "III.5.c", "III.6", "III.7", "III.8", "III.9", "V"
    ]  # fmt: skip
    briefing = plan.item("III.4")
    assert briefing is not None
    assert (briefing.lead_agency, briefing.frequency, briefing.frequency_text) == (
        "vp-ubnd",
        Frequency.QUARTERLY,
        "Định kỳ 01 lần/quý",
    )
    tv = plan.item("III.5.a")
    assert tv is not None
    assert tv.frequency is Frequency.EVERY_TWO_WEEKS
    # The 2025 reorganisation: the department of information and communications is skhcn, no districts.
    assert AGENCIES["skhcn"].name == "Sở Khoa học và Công nghệ thành phố Đà Nẵng"
    assert AGENCIES["skhcn"].code == "SKHCN"
    every_key = {key for item in plan.items for key in (item.lead_agency, *item.co_agencies)}
    assert "ubnd-phuong-xa" in every_key
    assert not any("quận" in AGENCIES[key].name for key in every_key)


def test_an_unknown_agency_is_named_with_its_line(tmp_path: Path) -> None:
    path = broken(tmp_path, "lead_agency: dai-ptth", "lead_agency: so-tttt")
    plan, problems = load_plan(path, agencies=AGENCIES)
    assert plan is None
    (problem,) = problems
    assert problem.line == line_with(path, "lead_agency: so-tttt")
    assert problem.field == "items[4].lead_agency"
    assert "unknown agency 'so-tttt'" in problem.message
    assert "[agencies.so-tttt]" in problem.message
    # The same file is fine once the settings name the agency.
    extra = dict(AGENCIES) | {"so-tttt": AgencySettings(name="Sở Thông tin và Truyền thông", code="STTTT")}
    assert load_plan(path, agencies=extra)[1] == []


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("frequency: quarterly", "frequency: weekly", "items[3].frequency", "every_two_weeks"),
        ("  - id: III.3\n", "  - id: III.2\n", "items[2].id", "appears twice"),
        ("    frequency_text: Hằng năm\n", "", "items[8].frequency_text", "required field"),
        ("channels: [print]", "channels: [fax]", "items[9].channels[0]", "sms"),
        ("issued: 2022-07-29", "issued: 2022-13-29", None, "malformed YAML value"),
    ],
)
def test_a_broken_plan_file_is_reported_at_its_line(
    tmp_path: Path, old: str, new: str, field: str | None, words: str
) -> None:
    path = broken(tmp_path, old, new)
    plan, problems = load_plan(path, agencies=AGENCIES)
    assert plan is None
    (problem,) = problems
    assert problem.field == field
    assert words in problem.message
    if field is not None:
        assert problem.line is not None
        # The line names the item's field, or for a missing one the item itself.
        text = path.read_text(encoding="utf-8").splitlines()[problem.line - 1]
        assert field.rsplit(".", 1)[-1].split("[")[0] in text or text.strip().startswith("- id:")


def test_plan_from_settings_lists_every_problem(tmp_path: Path) -> None:
    path = broken(tmp_path, "lead_agency: snv", "lead_agency: khong-co")
    settings = Settings(plan_file=str(path), base_dir=tmp_path)
    with pytest.raises(
        PlanError, match=r"plan\.yaml:\d+: items\[9\]\.lead_agency: unknown agency 'khong-co'"
    ):
        plan_from_settings(settings)
    with pytest.raises(PlanError, match="no such file"):
        plan_from_settings(Settings(plan_file="nowhere.yaml", base_dir=tmp_path))


def test_every_shipped_campaign_names_an_item_of_the_plan() -> None:
    plan, _ = load_plan(PLAN, agencies=AGENCIES)
    bundles, problems = validate_paths(
        [REPO / "campaigns"], templates_dir=REPO / "templates", providers=PROVIDERS, plan=plan
    )
    assert [str(p) for p in problems] == []
    # plan.yaml sits among the campaigns but is not read as one.
    assert all(bundle.source.name != "plan.yaml" for bundle in bundles)
    items = {b.definition.plan_item for b in bundles if "plan-143" in b.source.parts}
    assert items == {"III.2", "III.3", "III.4", "III.9", "V"}


def test_an_unknown_plan_item_is_an_error_at_its_line(tmp_path: Path) -> None:
    plan, _ = load_plan(PLAN, agencies=AGENCIES)
    path = write_campaign(tmp_path, plan_item="III.10")
    bundle, problems = load_campaign_file(
        path, templates_dir=tmp_path / "templates", providers=PROVIDERS, plan=plan
    )
    assert bundle is None
    (problem,) = problems
    assert (problem.field, problem.line) == ("plan_item", line_with(path, "plan_item:"))
    assert "unknown plan item 'III.10'" in problem.message
    assert "III.5.a" in problem.message
    # Without a plan to check against (a library caller), the shape alone is checked.
    assert load_campaign_file(path, templates_dir=tmp_path / "templates", providers=PROVIDERS)[1] == []


def test_the_plan_item_is_part_of_the_content_hash(tmp_path: Path) -> None:
    plan, _ = load_plan(PLAN, agencies=AGENCIES)
    hashes = []
    for item in ("III.9", "III.4"):
        path = write_campaign(tmp_path, plan_item=item)
        bundle, problems = load_campaign_file(
            path, templates_dir=tmp_path / "templates", providers=PROVIDERS, plan=plan
        )
        assert problems == []
        assert bundle is not None
        assert bundle.definition.plan_item == item
        hashes.append(bundle.content_hash)
    assert hashes[0] != hashes[1]


def test_campaigns_validate_in_a_working_directory_uses_its_plan(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI reads the installation's plan: a campaign naming an item it lacks is refused."""
    from typer.testing import CliRunner

    from broadcaster.cli import app

    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    shutil.copy(PLAN, workdir / "campaigns" / "plan-143" / "plan.yaml")
    ok = CliRunner().invoke(app, ["campaigns", "validate"])
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert "plan.yaml" not in ok.stdout
    path = write_campaign(workdir, plan_item="III.10")
    refused = CliRunner().invoke(app, ["campaigns", "validate", str(path)])
    assert refused.exit_code == 1
    assert "plan_item: unknown plan item 'III.10'" in " ".join((refused.stdout + refused.stderr).split())
