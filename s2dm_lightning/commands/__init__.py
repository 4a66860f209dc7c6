"""The command line's machinery beside LightningCLI: clear errors, the checkpoint-vs-config rule."""
