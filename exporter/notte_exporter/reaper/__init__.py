"""The opt-in reaper: stops sessions past the owner's own policy, safely.

Loaded only with ``--reaper.config.file``: an exporter without it never imports this
package and never makes a request other than a GET. The parts, one job each:

- ``policy``: the policy file (its model, every check, reloads);
- ``decide``: which sessions to stop, as pure functions of what polls saw and a clock;
- ``reaper``: the actor that sees each poll's live sessions, stops through the client and
  keeps the audit;
- ``metrics``: the ``notte_reaper_*`` families it serves.
"""
