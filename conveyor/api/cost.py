"""Query cost: an upper bound on the fields a response can hold, checked before execution.

Depth, alias and token limits each bound one dimension; nested lists multiply. Thirty aliases
of `jobs(first: 500) { edges { node { events(first: 1000) { job { events ... } } } } }` pass
all three and would ask PostgreSQL for millions of rows. So every operation is costed:

- each field counts 1 per time it can appear in the response;
- a list field multiplies what is under it by its page size: `first` when the document gives
  a number (at most the field's maximum), the field's maximum when `first` is a variable
  (documents are validated once, before any variables are known, so the worst case counts),
  the argument's default when `first` is absent;
- a connection's `first` applies to the list under it (`jobs(first: 50) { edges }`);
- a list without a `first` argument counts `UNPAGED_LIST_ITEMS` items;
- a field resolved with a database read per parent object (`Job.events`) costs
  `field_costs` more each time it appears.

Inline fragments and spreads on different types are all added up (an upper bound, kept simple).
A document over the limit is refused with `QUERY_TOO_COMPLEX`, like the other limits, before
any resolver runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
)
from graphql.language.visitor import SKIP, VisitorAction

#: Items assumed for a list field that takes no `first` (job kinds, workers, attempts, ...).
UNPAGED_LIST_ITEMS = 10
#: Deeper than this, nothing more is counted: the depth limit refuses such documents anyway.
_MAX_NESTING = 128

CODE = "QUERY_TOO_COMPLEX"
#: Costs are reported up to this (they grow without bound; JSON integers should not).
_HUGE = 10**12


def create_validator(
    max_cost: int,
    *,
    page_limits: Mapping[tuple[str, str], int],
    field_costs: Mapping[tuple[str, str], int],
) -> type[ValidationRule]:
    """A validation rule refusing operations that cost more than `max_cost`.

    `page_limits`: the largest `first` of a paginated field, by (type, field).
    `field_costs`: extra cost of a field, by (type, field), for each time it appears.
    """

    class QueryCost(ValidationRule):
        def enter_operation_definition(
            self, node: OperationDefinitionNode, *_: Any
        ) -> VisitorAction:
            root = self.context.schema.get_root_type(node.operation)
            if root is not None:
                counter = _Counter(self.context, page_limits, field_costs)
                cost = counter.selections(node.selection_set, root, None, 0)
                if cost > max_cost:
                    name = f" {node.name.value}" if node.name else ""
                    shown = f"{cost:,}" if cost < _HUGE else f"over {_HUGE:,}"
                    self.report_error(
                        GraphQLError(
                            f"the operation{name} may return up to {shown} fields; the limit "
                            f"is {max_cost:,} (ask for smaller pages with `first`, or nest "
                            "fewer lists)",
                            node,
                            extensions={
                                "code": CODE,
                                "cost": min(cost, _HUGE),
                                "maxCost": max_cost,
                            },
                        )
                    )
            return SKIP  # this rule walks the operation itself

    return QueryCost


class _Counter:
    def __init__(
        self,
        context: ValidationContext,
        page_limits: Mapping[tuple[str, str], int],
        field_costs: Mapping[tuple[str, str], int],
    ) -> None:
        self._context = context
        self._page_limits = page_limits
        self._field_costs = field_costs
        self._fragments: dict[tuple[str, int | None], int] = {}
        self._spreading: set[str] = set()

    def selections(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType,
        pending: int | None,
        depth: int,
    ) -> int:
        """Cost of one instance of `selection_set` on `parent`. `pending`: the page size of an
        enclosing connection, for the first list below it."""
        if selection_set is None or depth > _MAX_NESTING:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, pending, depth)
            elif isinstance(selection, InlineFragmentNode):
                on = parent
                if selection.type_condition is not None:
                    on = self._context.schema.get_type(selection.type_condition.name.value) or on
                total += self.selections(selection.selection_set, on, pending, depth + 1)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._spread(selection.name.value, pending, depth)
        return total

    def _spread(self, name: str, pending: int | None, depth: int) -> int:
        key = (name, pending)
        if key in self._fragments:
            return self._fragments[key]
        fragment = self._context.get_fragment(name)
        if fragment is None or name in self._spreading:  # unknown or cyclic: other rules say so
            return 0
        on = self._context.schema.get_type(fragment.type_condition.name.value)
        if on is None:
            return 0
        self._spreading.add(name)
        try:
            cost = self.selections(fragment.selection_set, on, pending, depth + 1)
        finally:
            self._spreading.discard(name)
        self._fragments[key] = cost
        return cost

    def _field(
        self, node: FieldNode, parent: GraphQLNamedType, pending: int | None, depth: int
    ) -> int:
        fields = getattr(parent, "fields", None)
        definition = fields.get(node.name.value) if fields is not None else None
        if definition is None:  # __typename, or unknown (FieldsOnCorrectType says so)
            return 1
        key = (parent.name, node.name.value)
        page = self._page(node, key, definition.args.get("first"))
        output = definition.type
        if isinstance(output, GraphQLNonNull):
            output = output.of_type
        if isinstance(output, GraphQLList):
            items = page if page is not None else pending
            items = UNPAGED_LIST_ITEMS if items is None else items
            below = None
        else:
            items, below = 1, page
        inner = self.selections(
            node.selection_set, get_named_type(definition.type), below, depth + 1
        )
        return 1 + self._field_costs.get(key, 0) + items * inner

    def _page(self, node: FieldNode, key: tuple[str, str], argument: Any) -> int | None:
        """The page size a field asks for, or None when it takes no `first`."""
        if argument is None:
            return None
        limit = self._page_limits.get(key)
        default = argument.default_value if isinstance(argument.default_value, int) else None
        given = next((a.value for a in node.arguments or () if a.name.value == "first"), None)
        if isinstance(given, IntValueNode):
            page = int(given.value)
        elif isinstance(given, VariableNode):
            page = limit if limit is not None else (default or UNPAGED_LIST_ITEMS)
        else:  # absent (or null): the default
            page = default if default is not None else UNPAGED_LIST_ITEMS
        page = max(page, 0)
        return min(page, limit) if limit is not None else page
