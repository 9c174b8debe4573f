from vqagan_lib.apps.cli import main

raise SystemExit(main())
