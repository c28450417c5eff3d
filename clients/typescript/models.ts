// Typed with graphql-codegen, sent with Apollo Client: persisted queries (hash first, the text
// only when the server asks), queries over GET, mutations over POST.
import { ApolloClient, HttpLink, InMemoryCache } from "@apollo/client/core/index.js";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries/index.js";
import { createHash } from "node:crypto";
import { graphql } from "./generated/index.js";

const server = process.env.MR_SERVER ?? "http://127.0.0.1:8080";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

// What went over the wire, to show the protocol ran: "GET hash", "POST text+hash", …
const sent: string[] = [];
const recording: typeof fetch = (input, init) => {
  const url = new URL(String(input));
  const body = typeof init?.body === "string" ? JSON.parse(init.body) : {};
  const hasText = url.searchParams.has("query") || "query" in body;
  sent.push(`${init?.method ?? "GET"} ${hasText ? "text" : "hash"}`);
  return fetch(input, init);
};

const client = new ApolloClient({
  link: createPersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
    new HttpLink({
      uri: `${server}/graphql`,
      headers: { Authorization: `Bearer ${process.env.MR_API_KEY}` },
      fetch: recording,
    }),
  ),
  cache: new InMemoryCache(),
});

const Projects = graphql(`
  query Projects {
    projects(first: 5) { edges { node { id slug } } }
  }
`);

const CreateModel = graphql(`
  mutation CreateModel($input: CreateModelInput!) {
    createModel(input: $input) { model { id name createdAt } }
  }
`);

const Models = graphql(`
  query Models($first: Int) {
    models(first: $first) { totalCount edges { node { id name status createdAt } } }
  }
`);

const projects = await client.query({ query: Projects });
const projectId = projects.data.projects.edges[0].node.id;
const created = await client.mutate({
  mutation: CreateModel,
  variables: { input: { projectId, name: "from-typescript" } },
});
const createdAt: string | undefined = created.data?.createModel.model.createdAt;
const models = await client.query({ query: Models, variables: { first: 20 }, fetchPolicy: "network-only" });
const names = models.data.models.edges.map((edge) => edge.node.name);
const again = await client.query({ query: Models, variables: { first: 20 }, fetchPolicy: "network-only" });
console.log(names, createdAt, sent);
if (!names.includes("from-typescript")) throw new Error(`the new model is missing: ${names}`);
if (again.data.models.totalCount !== models.data.models.totalCount) throw new Error("the hash alone answered differently");
// A query the server has not seen: the hash by GET, refused, then the text by POST; once
// known, the hash alone by GET. Mutations go by POST.
const expected = ["GET hash", "POST text", "POST hash", "POST text", "GET hash", "POST text", "GET hash"];
if (JSON.stringify(sent) !== JSON.stringify(expected)) throw new Error(`unexpected requests: ${sent}`);
