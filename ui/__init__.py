"""fedapp's Streamlit UI: launch simulations, watch and compare their runs."""
