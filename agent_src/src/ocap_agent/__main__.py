from ocap_agent.cli import main

raise SystemExit(main())
