"""Static checks of the browser code: module graph, house rules, template hygiene and the RU/EN dictionaries.

These run without a browser. They keep the frontend's architecture honest: feature modules talk
through the bus and never import each other (``getSettings`` and ``t`` are the allowed exceptions) and
a feature split by concern keeps its parts (``chat-jobs.js``) private, no module reaches 400 lines,
importing a module has no side effects, nothing is written to ``window``, no markup is built from
data, the page has no inline script, style or handler (the CSP forbids them anyway), and every
string the page shows exists in both languages.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audiocraft_webui import protocol

ROOT = Path(__file__).resolve().parents[1]
JS_DIR = ROOT / "static" / "js"
TEMPLATE = ROOT / "templates" / "index.html"
LOCALES = {lang: ROOT / "static" / "locales" / f"{lang}.json" for lang in ("en", "ru")}

#: Shared infrastructure any module may import; everything else under static/js is a feature module.
INFRA = {"bus", "dom", "http", "store", "socket", "i18n", "render", "dialog"}
ENTRY = "main"
#: The only names a feature module may import from another feature module.
ALLOWED_CROSS = {"settings": {"getSettings"}}
#: `<feature>-<part>.js` is a private part of a feature split by concern (chat-jobs.js of chat.js): it is
#: imported only by its feature and that feature's other parts, and imports only infrastructure and them.
PART = re.compile(r"^([a-z]+)-[a-z]+$")

IMPORT = re.compile(r"""^import\s+(?:\{([^}]*)\}\s+from\s+)?["']([^"']+)["'];?""", re.M)
TOP_LEVEL_OK = re.compile(r"^(import |export |const |let |function |async function |class |\}|\)|\]|/\*|\*/|//|$)")
EXPORT_DECL = re.compile(r"^export (?:async function|function|const|let|class) (\w+)", re.M)


def modules() -> dict[str, str]:
    """Every module's source by its name (file name without .js)."""
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(JS_DIR.glob("*.js"))}


def imports(source: str) -> list[tuple[str, set[str]]]:
    """(specifier, imported names) of each static import."""
    return [(spec, {name.strip().split(" as ")[0] for name in (names or "").split(",") if name.strip()})
            for names, spec in IMPORT.findall(source)]


def locale(lang: str) -> dict[str, str]:
    """One dictionary."""
    return json.loads(LOCALES[lang].read_text(encoding="utf-8"))


def test_every_relative_import_resolves() -> None:
    for name, source in modules().items():
        for spec, _ in imports(source):
            assert spec.startswith("./") or spec.startswith("../"), f"{name}.js imports a bare specifier {spec!r}"
            assert (JS_DIR / spec).resolve().is_file(), f"{name}.js imports {spec}, which does not exist"


def test_every_module_is_reachable_from_main() -> None:
    sources = modules()
    seen, todo = set(), [ENTRY]
    while todo:
        current = todo.pop()
        seen.add(current)
        for spec, _ in imports(sources[current]):
            target = Path(spec).stem
            if (JS_DIR / spec).resolve().parent == JS_DIR and target not in seen:
                todo.append(target)
    assert seen == set(sources), f"modules nothing imports: {sorted(set(sources) - seen)}"


def feature_of(name: str) -> str | None:
    """The feature a private part belongs to (`chat` for chat-jobs), None for any other module."""
    match = PART.match(name)
    return match.group(1) if match else None


def test_feature_modules_do_not_import_each_other() -> None:
    sources = modules()
    features = set(sources) - INFRA - {ENTRY}
    for name in sources.keys() - {ENTRY}:
        for spec, names in imports(sources[name]):
            target = Path(spec).stem
            if (JS_DIR / spec).resolve().parent != JS_DIR:
                continue  # vendored code
            if name in INFRA:
                assert target in INFRA, f"infrastructure module {name}.js imports feature module {target}.js"
            elif feature_of(target):
                assert feature_of(target) in (name, feature_of(name)), (
                    f"{name}.js imports {target}.js, a private part of {feature_of(target)}.js")
            elif feature_of(name):
                assert target in INFRA, \
                    f"{name}.js, a part of {feature_of(name)}.js, imports feature module {target}.js"
            elif target in features:
                allowed = ALLOWED_CROSS.get(target, set())
                assert names and names <= allowed, f"{name}.js imports {names or '*'} from feature module {target}.js"


def test_parts_belong_to_a_feature_and_the_entry_imports_none() -> None:
    sources = modules()
    for name in sources:
        owner = feature_of(name)
        assert not owner or (owner in sources and owner not in INFRA and not feature_of(owner)), (
            f"{name}.js is named as a part of {owner}.js, which is not a feature module")
    for spec, _ in imports(sources[ENTRY]):
        assert not feature_of(Path(spec).stem), f"{ENTRY}.js imports {spec}, a private part of a feature"


def test_every_module_is_under_400_lines() -> None:
    """A module that grows past this is split by concern (a feature into its private parts)."""
    for name, source in modules().items():
        assert len(source.splitlines()) < 400, f"{name}.js has {len(source.splitlines())} lines"


def test_importing_a_module_has_no_side_effects() -> None:
    for name, source in modules().items():
        if name == ENTRY:
            continue
        for number, line in enumerate(source.splitlines(), 1):
            if not line[:1].isspace():  # statements at module level start in column 0
                assert TOP_LEVEL_OK.match(line), f"{name}.js:{number} runs code at import time: {line!r}"


def test_no_window_writes_and_no_markup_from_strings() -> None:
    for name, source in modules().items():
        assert not re.search(r"\b(?:window|globalThis|self)\.[\w$]+\s*=(?!=)", source), f"{name}.js writes a global"
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, f"{name}.js uses {sink}"


def test_every_export_has_jsdoc() -> None:
    for name, source in modules().items():
        lines = source.splitlines()
        for match in EXPORT_DECL.finditer(source):
            index = source[: match.start()].count("\n")
            previous = next(line for line in reversed(lines[:index]) if line.strip())
            assert previous.strip().endswith("*/"), f"{name}.js: export {match.group(1)} has no JSDoc block"


class _TemplateScan(HTMLParser):
    """Collect what the hygiene checks need from the page template."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.keys: set[str] = set()
        self.labelled: set[str] = set()
        self.controls: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for attr, _ in attrs:
            if attr.startswith("on") or attr == "style":
                self.problems.append(f"<{tag} {attr}=...>")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script" and "src" not in values and values.get("type") != "application/json":
            self.problems.append("inline <script>")
        if "data-i18n" in values:
            self.keys.add(values["data-i18n"] or "")
        for pair in (values.get("data-i18n-attr") or "").split(";"):
            if pair.strip():
                self.keys.add(pair.split(":", 1)[1].strip())
        if tag == "label" and values.get("for"):
            self.labelled.add(values["for"] or "")
        if tag in ("input", "select", "textarea") and values.get("type") != "hidden":
            self.controls.append((tag, values))


def scan_template() -> _TemplateScan:
    """Parse the template once."""
    scan = _TemplateScan()
    scan.feed(TEMPLATE.read_text(encoding="utf-8"))
    return scan


def test_template_has_no_inline_code_or_style_and_nothing_remote() -> None:
    scan = scan_template()
    assert not scan.problems, scan.problems
    for path in [TEMPLATE, *JS_DIR.glob("*.js"), *(ROOT / "static" / "css").glob("*.css")]:
        assert not re.search(r"https?://", path.read_text(encoding="utf-8")), f"{path.name} refers to a remote URL"


def test_template_controls_have_labels() -> None:
    """Controls with an id have a <label for>; the others sit inside a <label> (checked in the browser tests)."""
    scan = scan_template()
    for tag, values in scan.controls:
        if values.get("id"):
            assert values["id"] in scan.labelled, f"<{tag} id={values['id']}> has no <label for>"


def test_dictionaries_have_the_same_keys_and_no_empty_text() -> None:
    english, russian = locale("en"), locale("ru")
    assert english.keys() == russian.keys(), f"keys in one language only: {sorted(english.keys() ^ russian.keys())}"
    for lang, strings in (("en", english), ("ru", russian)):
        assert all(isinstance(text, str) and text.strip() for text in strings.values()), f"empty text in {lang}"
        for key, text in strings.items():
            assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", english[key])), (
                f"{lang}:{key} has other placeholders than en")


def test_every_key_the_page_uses_exists() -> None:
    english = locale("en")
    used = set(scan_template().keys)
    literal = re.compile(r'(?:\bt\(|(?:translate|setStatus)\([^,()]+,\s*|tEl\("\w+",\s*|\bkey:\s*'
                         r'|confirm: |title: |text: )"([a-z][\w.]*\.[\w.]+)"')
    attribute = re.compile(r"""i18n-?[aA]ttr"?:? ?=? ?["`][\w-]+:([a-z][\w.]*\.[\w.]+)["`]""")
    for source in modules().values():
        used |= set(literal.findall(source)) | set(attribute.findall(source))
    missing = sorted(key for key in used if key not in english)
    assert not missing, f"keys used but not in the dictionaries: {missing}"


@pytest.mark.parametrize("family, names", [
    ("job.state", ["sending", "queued", "running", "done", "failed", "cancelled", "interrupted", "refused"]),
    ("format", list(protocol.FORMATS)),
    ("stem_split", [target or "none" for target in protocol.STEM_TARGETS]),
    ("phase", sorted(set(re.findall(r"""\.phase\("(\w+)\"""", "".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "audiocraft_webui").rglob("*.py"))))
        | {"queued", "starting", "loading_model"})),
    ("live", ["buffering", "playing", "paused", "ended", "failed", "cancelled", "stopped"]),
    ("live.error", sorted(set(re.findall(r'PreviewError\("(\w+)"',
                                         (ROOT / "audiocraft_webui" / "preview.py").read_text(encoding="utf-8"))))),
])
def test_dynamic_key_families_are_complete(family: str, names: list[str]) -> None:
    """Keys built at run time (`job.state.${state}`, `phase.${phase}` ...) cover every value the server sends."""
    english = locale("en")
    missing = [f"{family}.{name}" for name in names if f"{family}.{name}" not in english]
    assert not missing, missing
