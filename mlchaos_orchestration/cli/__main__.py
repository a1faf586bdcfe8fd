"""``python -m mlchaos_orchestration.cli``: the ``mlchaos`` command."""

from mlchaos_orchestration.cli.commands import main

main()
