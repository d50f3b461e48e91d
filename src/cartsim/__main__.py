from cartsim.cli import app

app()
