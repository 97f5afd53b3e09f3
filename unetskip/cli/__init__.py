"""The command line: `unetskip <command>` (`main`, which lists every command and imports only the one
it runs), the LightningCLI of fit/validate/test/predict, check-data, and what the console prints."""
