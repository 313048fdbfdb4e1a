"""The browser tests start a real chromium and take a while: `make test-browser` runs them
(it sets CBAM_COURSE_BROWSER_TESTS=1); `make unit` / `make test` leave them out."""
import os

if os.environ.get("CBAM_COURSE_BROWSER_TESTS", "") != "1":
    collect_ignore_glob = ["test_*.py"]
