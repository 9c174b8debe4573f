try:
    from vqagan_lib.apps.cli import main
except KeyboardInterrupt:  # Ctrl-C while the CLI itself is still being imported: the same one line as later
    import sys

    sys.stderr.write("vqagan: interrupted\n")
    raise SystemExit(130) from None

raise SystemExit(main())
