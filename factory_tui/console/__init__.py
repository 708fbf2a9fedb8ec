"""The Textual console: the app shell (`app`), its tick without Textual (`pipeline`,
`tick_loop`), what runs beside the screen (`services`), the data the drill-down views need
(`drilldown`, `alert_keeper`), the machine reading (`health`) and the full-screen views
(`screens/`)."""
