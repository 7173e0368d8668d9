"""The provincial centre's application: the sync API (sync/central) joined to the staff
dashboard (web_ui/central), served in one process or as N worker processes on one port."""
