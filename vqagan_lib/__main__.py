from vqagan_lib.cli import main

raise SystemExit(main())
