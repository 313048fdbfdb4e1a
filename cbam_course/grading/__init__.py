"""Running and grading notebooks: the instructor's side of the course, never imported by the lessons.

- ``run``: run a notebook top to bottom in a fresh kernel, within a time and a memory limit; what
  ``make html``, ``make runtimes`` and the grader share (and why no run can hang);
- ``sandbox``: a learner's kernel out of the grader's reach (its own session; where Linux allows,
  its own PID, network and mount namespaces);
- ``grade``: ``python -m cbam_course grade DIR``, every learner's exercise notebooks run, probed in
  their kernels and judged in the grader's process by the course's checkers, into a gradebook;
- ``report``: the gradebook, its table and each learner's feedback.

They need the notebook tools (nbclient, nbformat, ipykernel): ``pip install -e '.[lab,test]'``.
"""
