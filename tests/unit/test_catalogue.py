"""The shipped catalogue, the lookups on it, and one test per rule the loader enforces.

Broken catalogues are copies of the shipped one in tmp_path with a single edit, so each test shows the
one mistake it is about and that the error names the file and the entry an editor has to fix.
"""

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from shared.catalogue import (
    SHIPPED_CATALOGUE_DIR,
    Catalogue,
    CatalogueError,
    Level,
    MatterKind,
    UnknownCode,
    load_catalogue,
)

XINHE_JIAYUAN = "320113003021"  # 馨合家园社区
WANSHOU = "320113003002"  # 万寿社区, same street
MAIGAOQIAO = "320113003000"  # 迈皋桥街道
MAQUN = "320113002000"  # 马群街道, same district
MAQUN_COMMUNITY = "320113002001"  # 马群社区
QIXIA = "320113000000"  # 栖霞区
XUANWU = "320102000000"  # 玄武区
MOLING_YINXIANG = "320115011001"  # 江宁区 秣陵街道 殷巷社区


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(SHIPPED_CATALOGUE_DIR)


Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def copy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "catalogue"
    shutil.copytree(SHIPPED_CATALOGUE_DIR, target)
    return target


@pytest.fixture
def broken(copy_dir: Path) -> Callable[[str, Edit], Path]:
    """Apply one edit to one YAML file of a fresh copy; return the copy's directory."""

    def edit(file: str, change: Edit) -> Path:
        path = copy_dir / file
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(document)
        path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return copy_dir

    return edit


def entry(document: dict[str, Any], list_key: str, code: str) -> dict[str, Any]:
    return next(item for item in document[list_key] if item["code"] == code)


def rejected(directory: Path, *fragments: str) -> CatalogueError:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(directory)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return caught.value


# ── The shipped catalogue ──────────────────────────────────────────────────────────────────────────


def test_shipped_catalogue_has_the_sample_jurisdictions(catalogue: Catalogue) -> None:
    districts = [unit for unit in catalogue.units.values() if unit.level is Level.DISTRICT]
    assert {district.name for district in districts} == {"栖霞区", "玄武区", "江宁区", "浦口区"}
    for district in districts:
        streets = [unit for unit in catalogue.units.values() if unit.parent_code == district.code]
        assert len(streets) >= 2, district.name
        for street in streets:
            assert street.level is Level.STREET
            communities = [unit for unit in catalogue.units.values() if unit.parent_code == street.code]
            assert len(communities) >= 2, street.name
            assert all(community.level is Level.COMMUNITY for community in communities)

    street_names = {unit.name for unit in catalogue.units.values() if unit.level is Level.STREET}
    assert {"迈皋桥街道", "秣陵街道", "江浦街道"} <= street_names
    assert catalogue.unit(XINHE_JIAYUAN).name == "馨合家园社区"
    assert catalogue.unit(XINHE_JIAYUAN).parent_code == MAIGAOQIAO
    assert catalogue.unit(MAIGAOQIAO).name == "迈皋桥街道"
    assert catalogue.unit(QIXIA).name == "栖霞区"


def test_shipped_catalogue_has_the_matters_and_bundles(catalogue: Catalogue) -> None:
    assert len(catalogue.matters) >= 8
    assert set(catalogue.bundles) == {"migrant-bundle", "social-insurance-transfer", "enterprise-change",
                                      "enterprise-startup"}
    assert catalogue.bundle("migrant-bundle").matters == (
        "residence-permit",
        "birth-registration-proof",
        "vocational-training-signup",
        "employment-registration",
    )
    assert catalogue.bundle("migrant-bundle").optional_matters == ("flexible-employment-insurance",)
    assert catalogue.bundle("social-insurance-transfer").matters == (
        "social-insurance-stop",
        "social-insurance-start",
    )
    assert catalogue.bundle("enterprise-change").matters == (
        "enterprise-capital-increase",
        "enterprise-new-shareholder",
    )
    for matter in catalogue.matters.values():
        assert matter.promised_days <= matter.legal_days
        assert catalogue.department(matter.department).has_desk_at(matter.lowest_level)


def test_residence_permit_follows_the_nanjing_rules(catalogue: Catalogue) -> None:
    permit = catalogue.matter("residence-permit")
    assert (permit.department, permit.lowest_level, permit.kind) == (
        "police",
        Level.STREET,
        MatterKind.PROMISED,
    )
    assert (permit.legal_days, permit.promised_days) == (15, 10)
    deferrable = {material.code: material.deferrable for material in permit.materials}
    assert deferrable["id-card"] is False
    assert deferrable["rental-contract"] is False
    assert deferrable["landlord-property-certificate-copy"] is True
    assert deferrable["landlord-id-copy"] is True
    assert {m.code for m in permit.main_materials} == {"id-card", "photo", "rental-contract"}
    assert permit.supplement_pauses_clock is True and permit.return_limit_days == 2  # the defaults


def test_only_the_property_complaint_has_an_internal_loop(catalogue: Catalogue) -> None:
    complaint = catalogue.matter("property-management-complaint")
    assert complaint.lowest_level is Level.COMMUNITY
    assert complaint.internal_loop_days == 3
    looped = [matter.code for matter in catalogue.matters.values() if matter.internal_loop_days is not None]
    assert looped == ["property-management-complaint"]
    assert catalogue.matter("flexible-employment-insurance").prerequisites == ("residence-permit",)


def test_loaded_catalogue_cannot_be_changed(catalogue: Catalogue) -> None:
    with pytest.raises(TypeError):
        catalogue.matters["new"] = catalogue.matter("residence-permit")  # type: ignore[index]
    with pytest.raises(ValidationError):
        catalogue.matter("residence-permit").promised_days = 1  # type: ignore[misc]


# ── Levels and lookups ─────────────────────────────────────────────────────────────────────────────


def test_levels_rank_bottom_up() -> None:
    assert [level.rank for level in Level.bottom_up()] == [0, 1, 2]
    assert Level.COMMUNITY.above() is Level.STREET
    assert Level.STREET.above() is Level.DISTRICT
    assert Level.DISTRICT.above() is None
    assert Level.STREET.below() is Level.COMMUNITY and Level.COMMUNITY.below() is None
    assert Level("street") is Level.STREET and Level.STREET == "street"


def test_unknown_codes_say_what_was_looked_up(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownCode) as caught:
        catalogue.matter("xyz")
    assert (caught.value.kind, caught.value.code) == ("matter", "xyz")
    assert str(caught.value) == "unknown matter code 'xyz'"
    assert isinstance(caught.value, LookupError)
    for lookup, kind in [
        (catalogue.bundle, "bundle"),
        (catalogue.department, "department"),
        (catalogue.unit, "unit"),
        (catalogue.community, "community"),
    ]:
        with pytest.raises(UnknownCode) as caught:
            lookup("nope")
        assert caught.value.kind == kind


def test_a_street_is_not_a_community(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownCode) as caught:
        catalogue.community(MAIGAOQIAO)
    assert (caught.value.kind, caught.value.code) == ("community", MAIGAOQIAO)
    assert "street" in str(caught.value)
    with pytest.raises(UnknownCode):
        catalogue.line_of(QIXIA)


def test_line_of_a_community_is_its_street_and_district(catalogue: Catalogue) -> None:
    line = catalogue.line_of(XINHE_JIAYUAN)
    assert {level: unit.code for level, unit in line.items()} == {
        Level.COMMUNITY: XINHE_JIAYUAN,
        Level.STREET: MAIGAOQIAO,
        Level.DISTRICT: QIXIA,
    }
    assert catalogue.unit_at(XINHE_JIAYUAN, Level.STREET).name == "迈皋桥街道"
    assert catalogue.unit_at(XINHE_JIAYUAN, "district").name == "栖霞区"
    assert catalogue.unit_at(MOLING_YINXIANG, Level.STREET).name == "秣陵街道"
    assert catalogue.unit_at(MOLING_YINXIANG, Level.COMMUNITY).code == MOLING_YINXIANG


def test_is_within_follows_the_tree(catalogue: Catalogue) -> None:
    assert catalogue.is_within(XINHE_JIAYUAN, XINHE_JIAYUAN)
    assert catalogue.is_within(XINHE_JIAYUAN, MAIGAOQIAO)
    assert catalogue.is_within(XINHE_JIAYUAN, QIXIA)
    assert catalogue.is_within(MAQUN, QIXIA)
    assert not catalogue.is_within(XINHE_JIAYUAN, WANSHOU)  # sibling community
    assert not catalogue.is_within(MAQUN_COMMUNITY, MAIGAOQIAO)  # other street, same district
    assert not catalogue.is_within(XINHE_JIAYUAN, XUANWU)
    assert not catalogue.is_within(QIXIA, XINHE_JIAYUAN)  # a scope is not inside its own community
    with pytest.raises(UnknownCode):
        catalogue.is_within("320113003999", QIXIA)
    with pytest.raises(UnknownCode):
        catalogue.is_within(XINHE_JIAYUAN, "320113999000")


# ── expand ─────────────────────────────────────────────────────────────────────────────────────────


def codes(matters: tuple[Any, ...]) -> list[str]:
    return [matter.code for matter in matters]


def test_expand_a_bundle_keeps_its_order(catalogue: Catalogue) -> None:
    assert codes(catalogue.expand(bundle_code="enterprise-change")) == [
        "enterprise-capital-increase",
        "enterprise-new-shareholder",
    ]


def test_expand_puts_prerequisites_first(catalogue: Catalogue) -> None:
    assert codes(catalogue.expand(matter_codes=["social-insurance-start", "social-insurance-stop"])) == [
        "social-insurance-stop",
        "social-insurance-start",
    ]
    expanded = codes(
        catalogue.expand(
            matter_codes=["flexible-employment-insurance", "residence-permit"], bundle_code="migrant-bundle"
        )
    )
    assert expanded == [
        "residence-permit",
        "birth-registration-proof",
        "vocational-training-signup",
        "employment-registration",
        "flexible-employment-insurance",
    ]  # residence-permit asked twice, kept once


def test_expand_does_not_add_prerequisites_nobody_asked_for(catalogue: Catalogue) -> None:
    # The applicant may already hold a residence permit.
    assert codes(catalogue.expand(matter_codes=["flexible-employment-insurance"])) == [
        "flexible-employment-insurance"
    ]


def test_expand_orders_through_a_prerequisite_that_was_not_asked_for(
    broken: Callable[[str, Edit], Path],
) -> None:
    # flexible-employment-insurance -> residence-permit -> employment-registration
    directory = broken(
        "matters.yaml",
        lambda doc: entry(doc, "matters", "residence-permit").update(
            prerequisites=["employment-registration"]
        ),
    )
    catalogue = load_catalogue(directory)
    expanded = catalogue.expand(matter_codes=["flexible-employment-insurance", "employment-registration"])
    assert codes(expanded) == ["employment-registration", "flexible-employment-insurance"]


def test_expand_refuses_unknown_codes_and_a_bare_string(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownCode) as caught:
        catalogue.expand(bundle_code="migrant-bundle", matter_codes=["no-such-matter"])
    assert caught.value.code == "no-such-matter"
    with pytest.raises(UnknownCode) as caught:
        catalogue.expand(bundle_code="no-such-bundle")
    assert caught.value.kind == "bundle"
    with pytest.raises(TypeError):
        catalogue.expand(matter_codes="residence-permit")
    assert catalogue.expand() == ()


# ── Version ────────────────────────────────────────────────────────────────────────────────────────


def test_version_is_the_manifest_version_plus_a_content_hash(catalogue: Catalogue, copy_dir: Path) -> None:
    assert re.fullmatch(r"2026\.12\.1\+[0-9a-f]{12}", catalogue.version)
    assert load_catalogue(copy_dir).version == catalogue.version  # same bytes, same version

    matters_file = copy_dir / "matters.yaml"
    matters_file.write_bytes(matters_file.read_bytes() + b"\n# an edit without a version bump\n")
    edited = load_catalogue(copy_dir)
    assert edited.version.startswith("2026.12.1+")
    assert edited.version != catalogue.version


# ── Validation: one test per rule ──────────────────────────────────────────────────────────────────


def test_wrong_type_is_reported_readably(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "residence-permit").update(legal_days="15 days")
    )
    error = rejected(directory, "matters.yaml: matter 'residence-permit': legal_days:", "'15 days'")
    assert "https://" not in str(error)  # pydantic's doc links are noise for a catalogue editor
    assert (error.file, error.entry) == ("matters.yaml", "matter 'residence-permit'")


def test_missing_field(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "employment-registration").pop("kind")
    )
    rejected(directory, "matters.yaml: matter 'employment-registration': kind: Field required")


def test_misspelt_field(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "residence-permit").update(promise_days=5)
    )
    rejected(directory, "matter 'residence-permit'", "promise_days: Extra inputs are not permitted")


def test_unknown_level_name(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "residence-permit").update(lowest_level="city")
    )
    rejected(directory, "matter 'residence-permit': lowest_level:", "'city'")


def test_code_not_kebab(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken("departments.yaml", lambda doc: doc["departments"][0].update(code="Police_Dept"))
    rejected(directory, "departments.yaml: department 'Police_Dept'", "kebab")


def test_duplicate_matter_code(broken: Callable[[str, Edit], Path]) -> None:
    def duplicate(doc: dict[str, Any]) -> None:
        doc["matters"].append(dict(entry(doc, "matters", "residence-permit")))

    rejected(broken("matters.yaml", duplicate), "matters.yaml: matter 'residence-permit': duplicate code")


def test_duplicate_unit_code(broken: Callable[[str, Edit], Path]) -> None:
    def duplicate(doc: dict[str, Any]) -> None:
        doc["units"].append(
            {"code": XINHE_JIAYUAN, "name": "重复社区", "level": "community", "parent_code": MAIGAOQIAO}
        )

    rejected(
        broken("jurisdictions.yaml", duplicate),
        f"jurisdictions.yaml: unit '{XINHE_JIAYUAN}'",
        "duplicate code",
    )


def test_duplicate_yaml_key(copy_dir: Path) -> None:
    matters_file = copy_dir / "matters.yaml"
    text = matters_file.read_text(encoding="utf-8")
    matters_file.write_text(
        text.replace("    promised_days: 10\n", "    promised_days: 10\n    promised_days: 12\n", 1),
        encoding="utf-8",
    )
    rejected(copy_dir, "matters.yaml: not valid YAML", "duplicate key 'promised_days'")


def test_promised_longer_than_legal(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "residence-permit").update(promised_days=20)
    )
    error = rejected(directory)
    assert (
        str(error) == "matters.yaml: matter 'residence-permit': promised_days 20 is longer than legal_days 15"
    )


def test_non_positive_days(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "residence-permit").update(promised_days=0)
    )
    rejected(
        directory, "matter 'residence-permit': promised_days: 0 is not a positive number of working days"
    )


def test_absurd_days(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "residence-permit").update(legal_days=1500)
    )
    rejected(directory, "matter 'residence-permit': legal_days: 1500 working days is more than 250")


def test_boolean_is_not_a_number_of_days(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "residence-permit").update(legal_days=True)
    )
    rejected(directory, "matter 'residence-permit': legal_days:")


def test_immediate_matter_promising_several_days(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "employment-registration").update(promised_days=3)
    )
    rejected(directory, "matter 'employment-registration': an immediate matter", "not 3")


def test_unknown_department(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "residence-permit").update(department="customs")
    )
    rejected(directory, "matters.yaml: matter 'residence-permit': unknown department 'customs'")


def test_department_without_a_desk_at_the_lowest_level(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "residence-permit").update(lowest_level="community")
    )
    rejected(directory, "matter 'residence-permit': department 'police' has no desk at community")


def test_department_without_a_desk_above_the_lowest_level(broken: Callable[[str, Edit], Path]) -> None:
    # The complaint could not go up to the street when the community's loop runs out.
    directory = broken(
        "departments.yaml", lambda doc: entry(doc, "departments", "grid").update(levels=["community"])
    )
    rejected(directory, "matter 'property-management-complaint': department 'grid' has no desk at street")


def test_department_levels_listed_twice(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "departments.yaml",
        lambda doc: entry(doc, "departments", "police").update(levels=["street", "street"]),
    )
    rejected(directory, "departments.yaml: department 'police'", "street more than once")


def test_department_without_levels(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken("departments.yaml", lambda doc: entry(doc, "departments", "civil").update(levels=[]))
    rejected(directory, "departments.yaml: department 'civil': levels is empty")


def test_prerequisite_cycle_is_named(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml",
        lambda doc: entry(doc, "matters", "residence-permit").update(
            prerequisites=["flexible-employment-insurance"]
        ),
    )
    rejected(
        directory,
        "matters.yaml: matter 'residence-permit': prerequisite cycle "
        "residence-permit -> flexible-employment-insurance -> residence-permit",
    )


def test_matter_that_requires_itself(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml",
        lambda doc: entry(doc, "matters", "employment-registration").update(
            prerequisites=["employment-registration"]
        ),
    )
    rejected(directory, "prerequisite cycle employment-registration -> employment-registration")


def test_unknown_prerequisite(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml",
        lambda doc: entry(doc, "matters", "social-insurance-start").update(prerequisites=["hukou"]),
    )
    rejected(directory, "matters.yaml: matter 'social-insurance-start': unknown prerequisite 'hukou'")


def test_material_listed_twice(broken: Callable[[str, Edit], Path]) -> None:
    def repeat_id_card(doc: dict[str, Any]) -> None:
        materials = entry(doc, "matters", "residence-permit")["materials"]
        materials.append(dict(materials[0]))

    rejected(
        broken("matters.yaml", repeat_id_card), "matter 'residence-permit': material 'id-card' is listed more"
    )


def test_internal_loop_only_on_community_matters(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "residence-permit").update(internal_loop_days=3)
    )
    rejected(directory, "matter 'residence-permit': internal_loop_days is only for community-level matters")


def test_internal_loop_must_leave_time_for_the_levels_above(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml",
        lambda doc: entry(doc, "matters", "property-management-complaint").update(internal_loop_days=10),
    )
    rejected(
        directory, "matter 'property-management-complaint': internal_loop_days 10 leaves the levels above"
    )


def test_bundle_with_one_matter(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "bundles.yaml",
        lambda doc: entry(doc, "bundles", "enterprise-change").update(
            matters=["enterprise-capital-increase"]
        ),
    )
    rejected(directory, "bundles.yaml: bundle 'enterprise-change': a bundle joins at least 2 matters")


def test_bundle_with_unknown_matter(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "bundles.yaml", lambda doc: entry(doc, "bundles", "migrant-bundle")["matters"].append("visa")
    )
    rejected(directory, "bundles.yaml: bundle 'migrant-bundle': unknown matter 'visa'")


def test_bundle_with_unknown_optional_matter(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "bundles.yaml", lambda doc: entry(doc, "bundles", "migrant-bundle").update(optional_matters=["visa"])
    )
    rejected(directory, "bundle 'migrant-bundle': unknown matter 'visa'")


def test_unit_with_unknown_parent(broken: Callable[[str, Edit], Path]) -> None:
    def orphan(doc: dict[str, Any]) -> None:
        doc["units"].append(
            {"code": "320113006001", "name": "无主社区", "level": "community", "parent_code": "320113006000"}
        )

    rejected(
        broken("jurisdictions.yaml", orphan),
        "unit '320113006001' (无主社区): unknown parent_code '320113006000'",
    )


def test_unit_code_not_twelve_digits(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "jurisdictions.yaml", lambda doc: entry(doc, "units", WANSHOU).update(code="32011300302")
    )
    rejected(directory, "unit '32011300302' (万寿社区): code:", "not a 12-digit division code")


def test_unit_code_written_as_a_yaml_number(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "jurisdictions.yaml", lambda doc: entry(doc, "units", WANSHOU).update(code=int(WANSHOU))
    )
    rejected(directory, f"unit '{WANSHOU}' (万寿社区): code: Input should be a valid string")


def test_unit_code_shape_does_not_match_level(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken("jurisdictions.yaml", lambda doc: entry(doc, "units", MAQUN).update(level="community"))
    rejected(
        directory,
        f"unit '{MAQUN}' (马群街道): code '{MAQUN}' has the shape of a street code, but level is community",
    )


def test_unit_code_fitting_no_level(broken: Callable[[str, Edit], Path]) -> None:
    def bad_code(doc: dict[str, Any]) -> None:
        doc["units"].append(
            {"code": "320113000005", "name": "怪码社区", "level": "community", "parent_code": MAIGAOQIAO}
        )

    rejected(
        broken("jurisdictions.yaml", bad_code),
        "unit '320113000005' (怪码社区): code '320113000005' fits no level",
    )


def test_child_code_not_under_its_parent(broken: Callable[[str, Edit], Path]) -> None:
    # 馨合家园 (320113003…) filed under 马群街道 (320113002000).
    directory = broken(
        "jurisdictions.yaml", lambda doc: entry(doc, "units", XINHE_JIAYUAN).update(parent_code=MAQUN)
    )
    rejected(
        directory, f"unit '{XINHE_JIAYUAN}' (馨合家园社区): code '{XINHE_JIAYUAN}' does not lie under parent"
    )


def test_parent_must_be_exactly_one_level_up(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "jurisdictions.yaml", lambda doc: entry(doc, "units", XINHE_JIAYUAN).update(parent_code=QIXIA)
    )
    rejected(directory, "unit '320113003021' (馨合家园社区): parent '320113000000' (栖霞区) is a district")


def test_district_has_no_parent(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "jurisdictions.yaml", lambda doc: entry(doc, "units", QIXIA).update(parent_code=XUANWU)
    )
    rejected(directory, f"unit '{QIXIA}' (栖霞区): a district has no parent_code")


def test_community_needs_a_parent(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "jurisdictions.yaml", lambda doc: entry(doc, "units", WANSHOU).update(parent_code=None)
    )
    rejected(directory, f"unit '{WANSHOU}' (万寿社区): a community needs a parent_code")


def test_district_outside_the_city(broken: Callable[[str, Edit], Path]) -> None:
    def suzhou_district(doc: dict[str, Any]) -> None:
        doc["units"].append(
            {"code": "320505000000", "name": "虎丘区", "level": "district", "parent_code": None}
        )

    rejected(
        broken("jurisdictions.yaml", suzhou_district),
        "unit '320505000000' (虎丘区): district does not lie in 南京市",
    )


def test_manifest_lists_a_missing_file(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken("catalogue.yaml", lambda doc: doc["files"].update(matters="services.yaml"))
    rejected(directory, "catalogue.yaml: files.matters: lists 'services.yaml', which does not exist")


def test_manifest_file_outside_the_directory(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken("catalogue.yaml", lambda doc: doc["files"].update(bundles="../bundles.yaml"))
    rejected(directory, "catalogue.yaml: files.bundles: '../bundles.yaml' lies outside")


def test_manifest_without_version(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken("catalogue.yaml", lambda doc: doc.pop("version"))
    rejected(directory, "catalogue.yaml: manifest: version: Field required")


def test_manifest_version_with_a_build_suffix(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken("catalogue.yaml", lambda doc: doc.update(version="2026.11.1+local"))
    rejected(directory, "catalogue.yaml: manifest: version:", "appends '+<content hash>'")


def test_directory_without_manifest(tmp_path: Path) -> None:
    rejected(tmp_path, "catalogue.yaml: cannot read manifest")


def test_data_file_of_the_wrong_shape(copy_dir: Path) -> None:
    (copy_dir / "bundles.yaml").write_text("- migrant-bundle\n", encoding="utf-8")
    rejected(copy_dir, "bundles.yaml: expected a mapping with a 'bundles' list")


def test_reject_and_return_reasons_are_coded(catalogue: Catalogue) -> None:
    assert "not-our-matter" in catalogue.return_reasons
    assert catalogue.reject_reasons["not-eligible"].name == "不符合办理条件"


def test_a_reason_code_listed_twice_is_refused(broken) -> None:
    directory = broken("reasons.yaml", lambda doc: doc["return"].append(dict(doc["return"][0])))
    with pytest.raises(CatalogueError, match=r"reasons.yaml: return: reason code 'not-our-matter' is listed twice"):
        load_catalogue(directory)


# ── Checked against the report (issue 14) ──────────────────────────────────────────────────────────


def test_social_insurance_stop_is_done_with_the_id_card_alone_at_the_community(catalogue: Catalogue) -> None:
    """The report: "只要带身份证就可以了，短短的几分钟就办好了". The catalogue used to ask for an employer's
    reduction form and 3 days at district level."""
    stop = catalogue.matter("social-insurance-stop")
    assert [material.code for material in stop.materials] == ["id-card"]
    assert stop.kind == "immediate" and stop.promised_days == 1
    assert stop.lowest_level == "community"


def test_enterprise_matters_and_the_enterprise_startup_bundle(catalogue: Catalogue) -> None:
    enterprise = {code for code, matter in catalogue.matters.items() if matter.applicant_kind == "enterprise"}
    assert {"enterprise-establishment", "company-seal-engraving", "new-taxpayer-registration",
            "employer-social-insurance-registration", "enterprise-deregistration",
            "enterprise-capital-increase", "enterprise-new-shareholder"} <= enterprise
    assert catalogue.matter("residence-permit").applicant_kind == "person"
    startup = catalogue.expand(bundle_code="enterprise-startup")
    assert [matter.code for matter in startup][0] == "enterprise-establishment"
    assert all(matter.applicant_kind == "enterprise" for matter in startup)
    for code in ("company-seal-engraving", "new-taxpayer-registration", "employer-social-insurance-registration"):
        assert catalogue.matter(code).prerequisites == ("enterprise-establishment",)


def test_a_bundle_mixing_resident_and_enterprise_matters_is_refused(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "bundles.yaml",
        lambda doc: entry(doc, "bundles", "enterprise-startup")["matters"].append("residence-permit"),
    )
    rejected(directory, "bundle 'enterprise-startup'", "mixes resident and enterprise matters",
             "residence-permit (person)")


def test_an_unknown_applicant_kind_is_refused(broken: Callable[[str, Edit], Path]) -> None:
    directory = broken(
        "matters.yaml", lambda doc: entry(doc, "matters", "residence-permit").update(applicant_kind="company")
    )
    rejected(directory, "matter 'residence-permit'", "applicant_kind")


def test_every_unit_says_where_its_code_comes_from(catalogue: Catalogue) -> None:
    """The report gives no community code: every community code is a sample, and the catalogue says so."""
    for unit in catalogue.units.values():
        expected = {"district": "official", "street": "unverified", "community": "invented"}[unit.level]
        assert unit.code_source == expected, unit.code
