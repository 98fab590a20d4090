import subprocess
import sys

from canarist import __version__
from canarist.cli.main import main


def test_version_subcommand_prints_version(capsys):
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"canarist version {__version__} revision dev"


def test_console_entry_point_runs_as_module():
    done = subprocess.run(
        [sys.executable, "-m", "canarist", "version"], capture_output=True, text=True, check=True
    )
    assert __version__ in done.stdout


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
