"""Python `gql`, as its documentation uses it: the schema is fetched from the server, so every
query is checked before it is sent. scripts/clients runs this against a live server."""

import os

from gql import Client, gql
from gql.transport.requests import RequestsHTTPTransport

transport = RequestsHTTPTransport(
    url=os.environ.get("MR_SERVER", "http://127.0.0.1:8080") + "/graphql",
    headers={"Authorization": f"Bearer {os.environ['MR_API_KEY']}"},
)
client = Client(transport=transport, fetch_schema_from_transport=True)

projects = client.execute(gql("{ projects(first: 1) { edges { node { id slug } } } }"))
project = projects["projects"]["edges"][0]["node"]

client.execute(
    gql("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }"),
    variable_values={"i": {"projectId": project["id"], "name": "from-python"}},
)

models = client.execute(gql("{ models(first: 20) { totalCount edges { node { name status } } } }"))
names = [edge["node"]["name"] for edge in models["models"]["edges"]]
print(project["slug"], names)

assert "from-python" in names
assert client.schema.get_type("Model") is not None  # the schema came from the server
