"""The ``crossmargin watch`` service: scheduled and block-driven scan cycles, the alert delivery worker,
the monitor's own heartbeat, retention, clean shutdown on SIGTERM/SIGINT, and structured logs.

Modules (each one job; this package file imports none of them so that ``aggregator.config`` can import
``aggregator.service.settings`` without a cycle):

- ``settings``  ``[watch]`` config section (intervals, block-driven mode, grace periods);
- ``logs``      JSON-lines or human log records on stderr, secrets redacted;
- ``blocks``    new-block notifications per chain: ``eth_subscribe newHeads`` over WebSocket, else
                polling ``eth_blockNumber``;
- ``runner``    one portfolio's cycles: at most one in flight, block triggers debounced and coalesced;
- ``watch``     the service: APScheduler 3 ``AsyncIOScheduler`` jobs, worker, heartbeat, retention,
                shutdown.
"""
