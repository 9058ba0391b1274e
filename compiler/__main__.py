from __future__ import annotations

from compiler.main import main

raise SystemExit(main())
