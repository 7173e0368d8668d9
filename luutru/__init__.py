"""luutru: the parts joined. The ``luutru`` command, provisioning (which drives every part), the
demo commune, and the centre's application (the sync API beside the dashboard) live here,
above ``appliance`` (records, the sealed log), ``sync`` (both ends of store-and-forward),
``web_ui`` and ``firmware_hooks``, none of which imports this package."""
