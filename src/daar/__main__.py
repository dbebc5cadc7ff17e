from daar.cli import main

raise SystemExit(main())
