"""The ways the book leaves this repository: the GitHub Pages workflow and the Binder environment.

Neither can run here (they need GitHub and mybinder.org), so these tests read their
configuration and check it against the repository's own: the workflow builds with the README's
command and runs nothing that CI does not; Binder installs the root requirements with the same
torch, only its CPU build.
"""

import re
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


# --- The GitHub Pages workflow -------------------------------------------------------------


def make_targets(script: str) -> list[str]:
    """The targets of the ``make <target>`` commands of a shell script, in order.

    Only commands count: a ``make`` at the start of a line or after ``;``, ``&&``, ``||``,
    ``then`` or ``do``; not one inside a comment or an ``echo``'d string.
    """
    script = re.sub(r"(^|\s)#.*", r"\1", script, flags=re.M)
    return re.findall(r"(?:^|;|&&|\|\||\bthen|\bdo)\s*make\s+([A-Za-z0-9_.-]+)", script, flags=re.M)


def load_workflow() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True; put it back under its name.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def steps_using(workflow: dict, action: str) -> list[tuple[str, dict]]:
    """(job name, step) for every step that uses `action` (any version)."""
    return [
        (name, step)
        for name, job in workflow["jobs"].items()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).split("@")[0] == action
    ]


def test_make_targets_reads_commands_not_comments_or_strings():
    script = (
        "# make clean would wipe the cache\n"
        "make test\n"
        'echo "ci: make test took ${SECONDS}s"\n'
        "if true; then make book; fi\n"
        "make notebooks && make browser-check  # make data\n"
    )
    assert make_targets(script) == ["test", "book", "notebooks", "browser-check"]


def test_the_workflow_publishes_on_pushes_to_main():
    triggers = load_workflow()["on"]
    assert "main" in triggers["push"]["branches"]
    assert "workflow_dispatch" in triggers


def test_the_workflow_deploys_to_pages_with_pages_permissions():
    workflow = load_workflow()
    deploying = steps_using(workflow, "actions/deploy-pages")
    assert deploying, "no job deploys to GitHub Pages"
    for name, _ in deploying:
        permissions = workflow["jobs"][name].get("permissions", workflow.get("permissions", {}))
        assert permissions.get("pages") == "write" and permissions.get("id-token") == "write", name
    assert workflow.get("concurrency"), "two deployments could run at once"


def test_the_workflow_uploads_the_built_book():
    uploads = steps_using(load_workflow(), "actions/upload-pages-artifact")
    assert [Path(step["with"]["path"]) for _, step in uploads] == [Path("_build/html")]


def test_the_workflow_runs_only_what_ci_runs_and_builds_the_book():
    ci = make_targets((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    assert "test" in ci and "book" in ci, f".ci/run runs {ci}"
    workflow = load_workflow()
    scripts = [step["run"] for job in workflow["jobs"].values() for step in job.get("steps", []) if "run" in step]
    targets = [target for script in scripts for target in make_targets(script)]
    assert "book" in targets, "the workflow must build with the README's command, `make book`"
    extra = set(targets) - set(ci)
    assert not extra, f"the workflow runs make targets that .ci/run does not: {sorted(extra)}"
    # Tests first, as in .ci/run: a failing chapter is never published, and the build reuses
    # the test run's executions of the chapters.
    if "test" in targets:
        assert targets.index("test") < targets.index("book")


# --- Binder --------------------------------------------------------------------------------


def requirement_lines(text: str) -> list[str]:
    """The lines of a pip requirements file without comments and blank lines."""
    lines = (re.sub(r"(^|\s)#.*", "", line).strip() for line in text.splitlines())
    return [line for line in lines if line]


def pins(lines: list[str]) -> dict[str, Version]:
    """Package name -> version, for the lines that pin exactly one version (``name==version``)."""
    out = {}
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:  # an option: -r, -e, --extra-index-url, ...
            continue
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator == "==":
            out[canonicalize_name(req.name)] = Version(specs[0].version)
    return out


def binder_problems(binder_text: str, root_text: str) -> list[str]:
    """What is wrong with binder/requirements.txt, given the root requirements.txt."""
    binder, root = requirement_lines(binder_text), requirement_lines(root_text)
    options = [line.split() for line in binder if line.startswith("-")]
    problems = []
    if ["--extra-index-url", CPU_INDEX] not in options and ["--index-url", CPU_INDEX] not in options:
        problems.append(f"torch does not come from PyTorch's CPU index ({CPU_INDEX})")
    torch, root_torch = pins(binder).get("torch"), pins(root).get("torch")
    if torch is None or torch.local != "cpu":
        problems.append(f"torch is not pinned to a CPU build (+cpu): {torch}")
    elif root_torch is None or torch.public != root_torch.public:
        problems.append(f"torch {torch.public} is not the root requirements' torch {root_torch}")
    if ["-r", "../requirements.txt"] not in options:  # then it must list the root's lines itself
        missing = [
            f"{name}=={version}"
            for name, version in pins(root).items()
            if name != "torch" and pins(binder).get(name) != version
        ]
        missing += [line for line in root if line.startswith("-e") and line not in binder]
        if missing:
            problems.append(f"does not install these root requirements: {missing}")
    return problems


def test_binder_has_its_own_configuration():
    """repo2docker reads binder/ instead of the root files once the folder exists."""
    assert (BINDER / "requirements.txt").is_file()
    assert (BINDER / "runtime.txt").read_text(encoding="utf-8").strip() == "python-3.11"


def test_binder_installs_cpu_torch_of_the_root_version_and_the_root_requirements():
    binder = (BINDER / "requirements.txt").read_text(encoding="utf-8")
    root = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert binder_problems(binder, root) == []


def test_binder_problems_are_found():
    """The check fails for each way of getting Binder's requirements wrong."""
    root = "# the root\ntorch==2.13.0\nnumpy==2.4.6\n-e ./code\n"
    index = f"--extra-index-url {CPU_INDEX}\n"
    assert binder_problems(index + "torch==2.13.0+cpu\n-r ../requirements.txt\n", root) == []
    assert binder_problems(index + "torch==2.13.0+cpu\nnumpy==2.4.6\n-e ./code\n", root) == []
    cases = {
        "torch==2.13.0+cpu\n-r ../requirements.txt\n": "CPU index",
        index + "torch==2.13.0\n-r ../requirements.txt\n": "not pinned to a CPU build",
        index + "-r ../requirements.txt\n": "not pinned to a CPU build",
        index + "torch==2.12.0+cpu\n-r ../requirements.txt\n": "not the root requirements' torch",
        index + "torch==2.13.0+cpu\n-e ./code\n": "numpy==2.4.6",
        index + "torch==2.13.0+cpu\nnumpy==2.4.6\n": "-e ./code",
    }
    for binder, expected in cases.items():
        problems = binder_problems(binder, root)
        assert len(problems) == 1 and expected in problems[0], (binder, problems)
