"""One module per CLI command, as pre-commit does. Each module's entry function returns the
exit code; errors are raised as ImgbatchError and turned into messages by the CLI's single
handler. Modules are imported only when their command runs, so `imgbatch --help` and
`validate` stay quick to start."""
