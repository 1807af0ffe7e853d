"""The UI's pages (scripts run by ``st.navigation``)."""
