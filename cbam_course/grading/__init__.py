"""Running and grading notebooks: the instructor's side of the course, never imported by the lessons.

- ``run``: run a notebook top to bottom in a fresh kernel, within a time and a memory limit; what
  ``make html``, ``make runtimes`` and the grader share (and why no run can hang);
- ``grade``: ``python -m cbam_course grade DIR``, every learner's exercise notebooks run and checked
  by the course's checkers, into a gradebook and feedback files.

Both need the notebook tools (nbclient, nbformat, ipykernel): ``pip install -e '.[lab,test]'``.
"""
