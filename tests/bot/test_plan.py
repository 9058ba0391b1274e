"""Schema pins are version specifiers (issue 14, item 5): a release is compatible only when the schema the global
cluster runs, or gets in the same change, satisfies the whole specifier; never a schema downgrade; an unparsable
pin is one clear note for that component while the others get their pull requests."""

from __future__ import annotations

from packaging.specifiers import SpecifierSet

from compiler.bot.upstream import Pin
from tests.bot.world import ANNOTATION, MATERIALIZE, SCHEMA, World, bot_pulls


def publish(w: World, name: str, image: str, tag: str, path: str, text: str) -> None:
    w.up(name).release(tag, files={path: text})
    w.hub.push(f"caveconnectome/{image}", tag)


def test_pins_are_whole_specifiers_and_never_a_downgrade(world: World) -> None:
    w = world  # the global cluster runs emannotationschemas 5.12.0
    w.release(SCHEMA, "v5.13.0", "emannotationschemas")
    # An exact older-major pin: no schema it could run satisfies it (it would take a downgrade).
    publish(w, MATERIALIZE, "materializationengine", "v4.24.0", "requirements.txt",
            "flask>=2\nemannotationschemas==4.0.0  # the old API\n")
    # A range 5.12.0 satisfies: compatible today, its own pull request.
    publish(w, MATERIALIZE, "materializationengine", "v4.23.5", "setup.py",
            'setup(name="materializationengine", install_requires=["emannotationschemas>=5,<6", "flask"])\n')
    # A compatible-release pin only 5.13.0 satisfies: it brings the global schema bump into its change.
    publish(w, ANNOTATION, "annotationengine", "v4.15.0", "pyproject.toml",
            '[project]\ndependencies = [\n  "emannotationschemas[extra]~=5.13",\n]\n')
    assert w.run() == 0, w.said

    pulls = {p["head"]: p for p in bot_pulls(w)}
    assert sorted(pulls) == ["cave-bot/annotation-schema", "cave-bot/materialize"]
    mat = pulls["cave-bot/materialize"]
    assert mat["title"] == "Bump materialize to 4.23.5"
    assert ("- materializationengine 4.23.5 (fanc, minnie): pins `emannotationschemas>=5,<6` ([setup.py at "
            f"v4.23.5](https://github.example/{MATERIALIZE}/blob/v4.23.5/setup.py)); the global cluster already runs "
            "a compatible version") in mat["body"]
    for cluster in ("fanc", "minnie"):
        assert (f"note: {cluster}: materializationengine 4.24.0 skipped: it pins emannotationschemas==4.0.0 "
                "(requirements.txt at v4.24.0), which the global cluster global cannot satisfy: it runs 5.12.0 and "
                "can get 5.13.0 (the bot never proposes a schema downgrade)") in w.said

    ann = pulls["cave-bot/annotation-schema"]
    assert ann["title"] == "Bump schema to 5.13.0, annotation to 4.15.0"
    assert "version: 5.13.0" in w.show(ann["head"], "environments/global.yaml")
    assert "pins `emannotationschemas~=5.13`" in ann["body"]
    assert "the global cluster global is bumped to a compatible version in this change" in ann["body"]
    assert sorted(w.refs()) == ["refs/heads/cave-bot/annotation-schema", "refs/heads/cave-bot/materialize",
                                "refs/heads/main"]
    assert "version: 4.23.5" in w.show("cave-bot/materialize", "environments/minnie.yaml")
    writes = w.writes_after(0)
    assert sorted(writes) == sorted([("POST", "/pulls")] * len(pulls)
                                    + [("POST", f"/issues/{p['number']}/labels") for p in pulls.values()])


def test_an_unparsable_pin_is_a_note_for_that_component_only(world: World) -> None:
    w = world
    publish(w, ANNOTATION, "annotationengine", "v4.15.0", "requirements.txt", "emannotationschemas>=5.12,<<6\n")
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0, w.said
    (pr,) = bot_pulls(w)
    assert pr["head"] == "cave-bot/materialize" and sorted(w.refs()) == ["refs/heads/cave-bot/materialize",
                                                                         "refs/heads/main"]
    assert ("note: fanc: annotationengine 4.15.0 skipped: its EMAnnotationSchemas requirement "
            "`emannotationschemas>=5.12,<<6` (requirements.txt at v4.15.0) is not a valid version specifier "
            "(Invalid specifier: '<<6'); fix it upstream, or set `bump: pinned`") in w.said
    assert w.writes_after(0) == [("POST", "/pulls"), ("POST", f"/issues/{pr['number']}/labels")]


def test_pin_allows_checks_the_whole_specifier() -> None:
    def pin(text: str) -> Pin:
        return Pin(f"emannotationschemas{text}", SpecifierSet(text), "requirements.txt", "u")

    assert pin(">=5,<6").allows("5.12.0") and not pin(">=5,<6").allows("6.0.0")
    assert pin("~=5.1").allows("5.13.0") and not pin("~=5.1").allows("6.0.0") and not pin("~=5.1").allows("5.0.9")
    assert not pin("==4.0.0").allows("5.12.0") and pin("==4.0.0").allows("4.0.0")
    assert pin(">=5.13.0rc1").allows("5.13.0-rc.1") and not pin(">=5").allows("not-a-version")
    assert not Pin("emannotationschemas>>5", None, "setup.py", "u", "bad").allows("5.0.0")


def test_a_malformed_release_list_is_a_note_for_that_component_only(world: World) -> None:
    w = world
    w.up(ANNOTATION).raw_releases = b'[{"tag_name": 4.15, "draft": false, "prerelease": false}]'
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0, w.said
    (pr,) = bot_pulls(w)
    assert pr["head"] == "cave-bot/materialize"
    assert [line for line in w.said if "annotationengine" in line] == [
        f"note: {cluster}: annotationengine not bumped: the release list of CAVEconnectome/AnnotationEngine is "
        "malformed (BadAttributeException: (4.15, <class 'str'>, None)); check --upstream and --upstream-api-url (a "
        "proxy answering for GitHub?)" for cluster in ("fanc", "minnie")]
    assert w.writes_after(0) == [("POST", "/pulls"), ("POST", f"/issues/{pr['number']}/labels")]

    w.up(ANNOTATION).raw_releases = b"<html>502 Bad Gateway</html>"  # not JSON at all: the same, for that one only
    assert w.run() == 0
    notes = [line for line in w.said if "annotationengine" in line]
    assert [n.split(":")[1] for n in notes] == [" fanc", " minnie"]
    assert all(n.split(": ", 2)[2].startswith("annotationengine not bumped: the release list of "
                                             "CAVEconnectome/AnnotationEngine is malformed (") for n in notes)
    assert any("up to date" in line for line in w.said)


def test_a_malformed_requirements_file_is_a_note_for_that_component_only(world: World) -> None:
    w = world
    publish(w, ANNOTATION, "annotationengine", "v4.15.0", "requirements.txt", "emannotationschemas==5.12.0\n")
    w.up(ANNOTATION).raw_contents[("v4.15.0", "requirements.txt")] = "abcde"  # not base64 (a broken proxy)
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0, w.said
    (pr,) = bot_pulls(w)
    assert pr["head"] == "cave-bot/materialize" and "| annotationengine |" not in pr["body"].split("### Images")[0]
    assert [line for line in w.said if "annotationengine" in line] == [
        f"note: {cluster}: annotationengine not bumped: the contents of requirements.txt of "
        "CAVEconnectome/AnnotationEngine at v4.15.0 are malformed (Error: Invalid base64-encoded string: number of "
        "data characters (5) cannot be 1 more than a multiple of 4); check --upstream and --upstream-api-url (a "
        "proxy answering for GitHub?)" for cluster in ("fanc", "minnie")]
    assert w.writes_after(0) == [("POST", "/pulls"), ("POST", f"/issues/{pr['number']}/labels")]
    contents = [path for m, path in w.gh.requests if "/contents/" in path and "AnnotationEngine" in path]
    assert len(contents) == 1  # read once: the second cluster reuses the verdict


def test_a_schema_bump_a_served_local_cannot_take_is_held(world: World) -> None:
    w = world  # the global runs 5.12.0; fanc and minnie run annotationengine 4.14.1 and materializationengine 4.23.0
    w.release(SCHEMA, "v6.0.0", "emannotationschemas")
    w.release(ANNOTATION, "v4.15.0", "annotationengine", schema_pin="~=6.0")  # needs 6: joins the schema bump
    assert w.run() == 0, w.said
    assert bot_pulls(w) == [] and w.gh.writes() == [] and list(w.refs()) == ["refs/heads/main"]
    runs = ", which pins emannotationschemas>=5.10,<6 (requirements.txt at v4.23.0)"
    assert [line for line in w.said if "held" in line] == [
        f"note: global: emannotationschemas 6.0.0 held: fanc runs materializationengine 4.23.0{runs}; minnie runs "
        f"materializationengine 4.23.0{runs}. Bump those first (a release whose pin allows 6.0.0); the next run "
        "proposes it then",
        "note: fanc: annotationengine 4.15.0 not bumped: it needs emannotationschemas 6.0.0 on global, which is held "
        "(see above)",
        "note: minnie: annotationengine 4.15.0 not bumped: it needs emannotationschemas 6.0.0 on global, which is "
        "held (see above)"]

    # A materialize release that needs 6 joins the same set: every local then runs a release that allows it.
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="~=6.0")
    assert w.run() == 0, w.said
    (pr,) = bot_pulls(w)
    assert pr["head"] == "cave-bot/annotation-materialize-schema"
    assert pr["title"] == "Bump schema to 6.0.0, annotation to 4.15.0, materialize to 4.24.0"
    assert not any("held" in line for line in w.said)
    assert w.writes_after(0) == [("POST", "/pulls"), ("POST", f"/issues/{pr['number']}/labels")]
