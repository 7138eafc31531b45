"""/v1/agents: create, list, read and change the account's agents."""

from __future__ import annotations

from fastapi import APIRouter

import ledger.agents
from bot.http.api.authentication import ApiKeyRoute
from bot.http.api.dependencies import AgentIdPath, CurrentAccount
from bot.http.api.errors import ApiError, error_responses
from bot.http.api.schemas import AgentCreate, AgentList, AgentOut, AgentUpdate, AgentUpdated

router = APIRouter(route_class=ApiKeyRoute)


@router.post(
    "/agents",
    status_code=201,
    response_model=AgentOut,
    responses=error_responses(400, 401, 413, 422),
    summary="Create an agent",
)
async def create_agent(body: AgentCreate, account: CurrentAccount) -> AgentOut:
    agent = await account.change(
        ledger.agents.create_agent,
        body.name,
        behaviour=body.behaviour,
        monthly_limit=body.monthly_limit_millicredits,
    )
    return AgentOut.of(agent)


@router.get(
    "/agents",
    response_model=AgentList,
    responses=error_responses(401),
    summary="List the account's agents",
)
async def list_agents(account: CurrentAccount) -> AgentList:
    agents = await account.read(ledger.agents.read_agents)
    return AgentList(agents=[AgentOut.of(a) for a in agents])


@router.get(
    "/agents/{agent_id}",
    response_model=AgentOut,
    responses=error_responses(401, 404, 422),
    summary="Read an agent",
)
async def read_agent(agent_id: AgentIdPath, account: CurrentAccount) -> AgentOut:
    return AgentOut.of(await account.read(ledger.agents.read_agent, agent_id))


@router.patch(
    "/agents/{agent_id}",
    response_model=AgentUpdated,
    responses=error_responses(400, 401, 404, 413, 422),
    summary="Change an agent's name, behaviour or monthly limit",
)
async def update_agent(
    agent_id: AgentIdPath, body: AgentUpdate, account: CurrentAccount
) -> AgentUpdated:
    changes = body.changes()
    for name in ("name", "behaviour"):
        if name in changes and changes[name] is None:
            raise ApiError(422, "invalid_request", f"{name}: cannot be null.")
    agent, resumed = await account.change(ledger.agents.change_agent, agent_id, **changes)
    return AgentUpdated.after(agent, resumed)
