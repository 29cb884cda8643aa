from host.cli.main import cli

cli(prog_name="cartplugin")
