"""The web layer: HTTP routes (:mod:`.views`, :mod:`.stem_views`), Socket.IO handlers (:mod:`.events`,
:mod:`.stem_events`) and who may talk to the server (:mod:`.security`). Handlers validate and hand work to
the services; nothing below this layer imports it."""
