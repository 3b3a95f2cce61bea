/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query Me {\n    me {\n      id\n      name\n      isAdmin\n      role\n      tenantId\n      isSuperuser\n      tokenScope\n    }\n  }\n": typeof types.MeDocument,
    "\n  fragment JobRow on Job {\n    id\n    kind\n    queue\n    status\n    priority\n    progress\n    progressMessage\n    attempt\n    maxAttempts\n    createdAt\n    runAt\n    nextRunAt\n    startedAt\n    finishedAt\n  }\n": typeof types.JobRowFragmentDoc,
    "\n  query Jobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      totalCount(atMost: 10000)\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...JobRow\n        }\n      }\n    }\n  }\n": typeof types.JobsDocument,
    "\n  query JobKinds {\n    jobKinds {\n      name\n      queue\n      description\n      inputSchema\n      maxAttempts\n      timeoutSeconds\n    }\n  }\n": typeof types.JobKindsDocument,
    "\n  fragment JobEventFields on JobEvent {\n    seq\n    type\n    status\n    progress\n    message\n    data\n    at\n  }\n": typeof types.JobEventFieldsFragmentDoc,
    "\n  query JobDetail($id: ID!) {\n    job(id: $id) {\n      ...JobRow\n      payload\n      result\n      error {\n        type\n        message\n      }\n      timeoutSeconds\n      deduplicated\n      queueServed\n      attempts {\n        number\n        status\n        workerId\n        startedAt\n        finishedAt\n        error {\n          type\n          message\n        }\n      }\n    }\n  }\n": typeof types.JobDetailDocument,
    "\n  query JobEventsHistory($id: ID!, $after: Int!, $first: Int!) {\n    job(id: $id) {\n      id\n      events(after: $after, first: $first) {\n        ...JobEventFields\n      }\n    }\n  }\n": typeof types.JobEventsHistoryDocument,
    "\n  subscription JobEvents($jobId: ID!, $after: Int) {\n    jobEvents(jobId: $jobId, after: $after) {\n      ...JobEventFields\n    }\n  }\n": typeof types.JobEventsDocument,
    "\n  subscription JobUpdates($filter: JobFilter) {\n    jobUpdates(filter: $filter) {\n      jobId\n      seq\n      type\n      kind\n      queue\n      status\n      progress\n      progressMessage\n      attempt\n      at\n    }\n  }\n": typeof types.JobUpdatesDocument,
    "\n  mutation SubmitJob($input: SubmitJobInput!) {\n    submitJob(input: $input) {\n      __typename\n      ... on Job {\n        id\n        status\n        deduplicated\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on InvalidInput {\n        fieldErrors {\n          path\n          message\n        }\n      }\n      ... on UnknownJobKind {\n        kind\n      }\n      ... on Conflict {\n        existingJobId\n      }\n      ... on PolicyDenied {\n        rule\n        retryAfterSeconds\n      }\n    }\n  }\n": typeof types.SubmitJobDocument,
    "\n  mutation CancelJob($id: ID!) {\n    cancelJob(id: $id) {\n      __typename\n      ... on Job {\n        ...JobRow\n      }\n      ... on UserError {\n        message\n        code\n      }\n    }\n  }\n": typeof types.CancelJobDocument,
    "\n  mutation RetryJob($id: ID!) {\n    retryJob(id: $id) {\n      __typename\n      ... on Job {\n        ...JobRow\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on PolicyDenied {\n        rule\n        retryAfterSeconds\n      }\n    }\n  }\n": typeof types.RetryJobDocument,
    "\n  mutation CancelJobs($filter: JobFilter!) {\n    cancelJobs(filter: $filter) {\n      count\n    }\n  }\n": typeof types.CancelJobsDocument,
    "\n  mutation RetryJobs($filter: JobFilter!) {\n    retryJobs(filter: $filter) {\n      count\n    }\n  }\n": typeof types.RetryJobsDocument,
    "\n  query FailedJobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      totalCount(atMost: 10000)\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          id\n          kind\n          queue\n          attempt\n          maxAttempts\n          createdAt\n          finishedAt\n          error {\n            type\n            message\n          }\n        }\n      }\n    }\n  }\n": typeof types.FailedJobsDocument,
    "\n  fragment QueueStatsFields on QueueStats {\n    queue\n    waiting\n    scheduled\n    running\n    failed\n    oldestWaitingSeconds\n    completedPerMinute\n    failedPerMinute\n    paused\n    pausedBy\n  }\n": typeof types.QueueStatsFieldsFragmentDoc,
    "\n  query Queues {\n    queues {\n      ...QueueStatsFields\n    }\n  }\n": typeof types.QueuesDocument,
    "\n  query Workers {\n    workers {\n      id\n      host\n      pid\n      queues\n      concurrency\n      startedAt\n      lastHeartbeatAt\n      runningJobs\n    }\n  }\n": typeof types.WorkersDocument,
    "\n  subscription QueueStats($interval: Float) {\n    queueStats(interval: $interval) {\n      ...QueueStatsFields\n    }\n  }\n": typeof types.QueueStatsDocument,
    "\n  query AuditLog($filter: AuditLogFilter, $first: Int!, $after: String) {\n    auditLog(filter: $filter, first: $first, after: $after) {\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          id\n          at\n          actorId\n          actorName\n          action\n          target\n          before\n          after\n          requestId\n          clientAddress\n        }\n      }\n    }\n  }\n": typeof types.AuditLogDocument,
    "\n  query PolicyDecisions($filter: PolicyDecisionFilter, $first: Int!, $after: String) {\n    policyDecisions(filter: $filter, first: $first, after: $after) {\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          id\n          at\n          principalId\n          principalName\n          action\n          jobKind\n          jobId\n          decision\n          rule\n          reason\n          policyVersion\n          requestId\n        }\n      }\n    }\n  }\n": typeof types.PolicyDecisionsDocument,
    "\n  query JobWaitingReason($id: ID!) {\n    job(id: $id) {\n      id\n      status\n      scheduleId\n      fireAt\n      waitingReason {\n        code\n        message\n        until\n        scope\n        limit\n        running\n        holders\n        ahead\n        aheadExact\n      }\n    }\n  }\n": typeof types.JobWaitingReasonDocument,
    "\n  fragment ScheduleFields on Schedule {\n    id\n    name\n    kind\n    input\n    cron\n    everySeconds\n    timezone\n    misfire\n    source\n    paused\n    pausedAt\n    pausedBy\n    nextFireAt\n    lastFireAt\n    skippedFires\n    nextFireTimes(count: 3)\n    recentFires {\n      fireAt\n      lagSeconds\n      manual\n      jobId\n      jobStatus\n      error\n    }\n  }\n": typeof types.ScheduleFieldsFragmentDoc,
    "\n  query Schedules {\n    schedules {\n      ...ScheduleFields\n    }\n  }\n": typeof types.SchedulesDocument,
    "\n  mutation CreateSchedule($input: CreateScheduleInput!) {\n    createSchedule(input: $input) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on InvalidInput {\n        fieldErrors {\n          path\n          message\n        }\n      }\n    }\n  }\n": typeof types.CreateScheduleDocument,
    "\n  mutation PauseSchedule($id: ID!) {\n    pauseSchedule(id: $id) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n": typeof types.PauseScheduleDocument,
    "\n  mutation ResumeSchedule($id: ID!) {\n    resumeSchedule(id: $id) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n": typeof types.ResumeScheduleDocument,
    "\n  mutation TriggerSchedule($id: ID!) {\n    triggerSchedule(id: $id) {\n      __typename\n      ... on Job {\n        id\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n": typeof types.TriggerScheduleDocument,
    "\n  mutation DeleteSchedule($id: ID!) {\n    deleteSchedule(id: $id) {\n      __typename\n      ... on UserError {\n        message\n      }\n    }\n  }\n": typeof types.DeleteScheduleDocument,
    "\n  mutation PauseQueue($queue: String!) {\n    pauseQueue(queue: $queue) {\n      __typename\n      ... on QueuePause {\n        queue\n        paused\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n": typeof types.PauseQueueDocument,
    "\n  mutation ResumeQueue($queue: String!) {\n    resumeQueue(queue: $queue) {\n      __typename\n      ... on QueuePause {\n        queue\n        paused\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n": typeof types.ResumeQueueDocument,
    "\n  query WorkflowRuns($after: String) {\n    workflowRuns(first: 50, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          workflow\n          status\n          progress\n          createdAt\n          finishedAt\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": typeof types.WorkflowRunsDocument,
    "\n  query WorkflowRun($id: ID!) {\n    workflowRun(id: $id) {\n      id\n      workflow\n      status\n      progress\n      generation\n      lastSeq\n      input\n      createdAt\n      finishedAt\n      error {\n        type\n        message\n      }\n      steps {\n        id\n        key\n        kind\n        isMap\n        status\n        expected\n        succeeded\n        failed\n        error {\n          type\n          message\n        }\n        job {\n          id\n          status\n        }\n        counts {\n          status\n          count\n        }\n      }\n    }\n    workflows {\n      name\n      edges {\n        from\n        to\n      }\n    }\n  }\n": typeof types.WorkflowRunDocument,
    "\n  query StepJobs($id: ID!, $status: [JobStatus!]) {\n    workflowRun(id: $id) {\n      id\n      steps {\n        id\n        key\n        jobs(status: $status, first: 200) {\n          id\n          status\n          mapIndex\n          attempt\n        }\n      }\n    }\n  }\n": typeof types.StepJobsDocument,
    "\n  subscription WorkflowEvents($runId: ID!, $after: Int) {\n    workflowEvents(runId: $runId, after: $after) {\n      seq\n      type\n      status\n      step\n      stepStatus\n    }\n  }\n": typeof types.WorkflowEventsDocument,
    "\n  mutation CancelWorkflowRun($id: ID!) {\n    cancelWorkflowRun(id: $id) {\n      __typename\n      ... on WorkflowRun {\n        id\n        status\n      }\n      ... on UserError {\n        code\n        message\n      }\n    }\n  }\n": typeof types.CancelWorkflowRunDocument,
    "\n  mutation RetryWorkflowRun($id: ID!) {\n    retryWorkflowRun(id: $id) {\n      __typename\n      ... on WorkflowRun {\n        id\n        status\n      }\n      ... on UserError {\n        code\n        message\n      }\n    }\n  }\n": typeof types.RetryWorkflowRunDocument,
};
const documents: Documents = {
    "\n  query Me {\n    me {\n      id\n      name\n      isAdmin\n      role\n      tenantId\n      isSuperuser\n      tokenScope\n    }\n  }\n": types.MeDocument,
    "\n  fragment JobRow on Job {\n    id\n    kind\n    queue\n    status\n    priority\n    progress\n    progressMessage\n    attempt\n    maxAttempts\n    createdAt\n    runAt\n    nextRunAt\n    startedAt\n    finishedAt\n  }\n": types.JobRowFragmentDoc,
    "\n  query Jobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      totalCount(atMost: 10000)\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...JobRow\n        }\n      }\n    }\n  }\n": types.JobsDocument,
    "\n  query JobKinds {\n    jobKinds {\n      name\n      queue\n      description\n      inputSchema\n      maxAttempts\n      timeoutSeconds\n    }\n  }\n": types.JobKindsDocument,
    "\n  fragment JobEventFields on JobEvent {\n    seq\n    type\n    status\n    progress\n    message\n    data\n    at\n  }\n": types.JobEventFieldsFragmentDoc,
    "\n  query JobDetail($id: ID!) {\n    job(id: $id) {\n      ...JobRow\n      payload\n      result\n      error {\n        type\n        message\n      }\n      timeoutSeconds\n      deduplicated\n      queueServed\n      attempts {\n        number\n        status\n        workerId\n        startedAt\n        finishedAt\n        error {\n          type\n          message\n        }\n      }\n    }\n  }\n": types.JobDetailDocument,
    "\n  query JobEventsHistory($id: ID!, $after: Int!, $first: Int!) {\n    job(id: $id) {\n      id\n      events(after: $after, first: $first) {\n        ...JobEventFields\n      }\n    }\n  }\n": types.JobEventsHistoryDocument,
    "\n  subscription JobEvents($jobId: ID!, $after: Int) {\n    jobEvents(jobId: $jobId, after: $after) {\n      ...JobEventFields\n    }\n  }\n": types.JobEventsDocument,
    "\n  subscription JobUpdates($filter: JobFilter) {\n    jobUpdates(filter: $filter) {\n      jobId\n      seq\n      type\n      kind\n      queue\n      status\n      progress\n      progressMessage\n      attempt\n      at\n    }\n  }\n": types.JobUpdatesDocument,
    "\n  mutation SubmitJob($input: SubmitJobInput!) {\n    submitJob(input: $input) {\n      __typename\n      ... on Job {\n        id\n        status\n        deduplicated\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on InvalidInput {\n        fieldErrors {\n          path\n          message\n        }\n      }\n      ... on UnknownJobKind {\n        kind\n      }\n      ... on Conflict {\n        existingJobId\n      }\n      ... on PolicyDenied {\n        rule\n        retryAfterSeconds\n      }\n    }\n  }\n": types.SubmitJobDocument,
    "\n  mutation CancelJob($id: ID!) {\n    cancelJob(id: $id) {\n      __typename\n      ... on Job {\n        ...JobRow\n      }\n      ... on UserError {\n        message\n        code\n      }\n    }\n  }\n": types.CancelJobDocument,
    "\n  mutation RetryJob($id: ID!) {\n    retryJob(id: $id) {\n      __typename\n      ... on Job {\n        ...JobRow\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on PolicyDenied {\n        rule\n        retryAfterSeconds\n      }\n    }\n  }\n": types.RetryJobDocument,
    "\n  mutation CancelJobs($filter: JobFilter!) {\n    cancelJobs(filter: $filter) {\n      count\n    }\n  }\n": types.CancelJobsDocument,
    "\n  mutation RetryJobs($filter: JobFilter!) {\n    retryJobs(filter: $filter) {\n      count\n    }\n  }\n": types.RetryJobsDocument,
    "\n  query FailedJobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      totalCount(atMost: 10000)\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          id\n          kind\n          queue\n          attempt\n          maxAttempts\n          createdAt\n          finishedAt\n          error {\n            type\n            message\n          }\n        }\n      }\n    }\n  }\n": types.FailedJobsDocument,
    "\n  fragment QueueStatsFields on QueueStats {\n    queue\n    waiting\n    scheduled\n    running\n    failed\n    oldestWaitingSeconds\n    completedPerMinute\n    failedPerMinute\n    paused\n    pausedBy\n  }\n": types.QueueStatsFieldsFragmentDoc,
    "\n  query Queues {\n    queues {\n      ...QueueStatsFields\n    }\n  }\n": types.QueuesDocument,
    "\n  query Workers {\n    workers {\n      id\n      host\n      pid\n      queues\n      concurrency\n      startedAt\n      lastHeartbeatAt\n      runningJobs\n    }\n  }\n": types.WorkersDocument,
    "\n  subscription QueueStats($interval: Float) {\n    queueStats(interval: $interval) {\n      ...QueueStatsFields\n    }\n  }\n": types.QueueStatsDocument,
    "\n  query AuditLog($filter: AuditLogFilter, $first: Int!, $after: String) {\n    auditLog(filter: $filter, first: $first, after: $after) {\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          id\n          at\n          actorId\n          actorName\n          action\n          target\n          before\n          after\n          requestId\n          clientAddress\n        }\n      }\n    }\n  }\n": types.AuditLogDocument,
    "\n  query PolicyDecisions($filter: PolicyDecisionFilter, $first: Int!, $after: String) {\n    policyDecisions(filter: $filter, first: $first, after: $after) {\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          id\n          at\n          principalId\n          principalName\n          action\n          jobKind\n          jobId\n          decision\n          rule\n          reason\n          policyVersion\n          requestId\n        }\n      }\n    }\n  }\n": types.PolicyDecisionsDocument,
    "\n  query JobWaitingReason($id: ID!) {\n    job(id: $id) {\n      id\n      status\n      scheduleId\n      fireAt\n      waitingReason {\n        code\n        message\n        until\n        scope\n        limit\n        running\n        holders\n        ahead\n        aheadExact\n      }\n    }\n  }\n": types.JobWaitingReasonDocument,
    "\n  fragment ScheduleFields on Schedule {\n    id\n    name\n    kind\n    input\n    cron\n    everySeconds\n    timezone\n    misfire\n    source\n    paused\n    pausedAt\n    pausedBy\n    nextFireAt\n    lastFireAt\n    skippedFires\n    nextFireTimes(count: 3)\n    recentFires {\n      fireAt\n      lagSeconds\n      manual\n      jobId\n      jobStatus\n      error\n    }\n  }\n": types.ScheduleFieldsFragmentDoc,
    "\n  query Schedules {\n    schedules {\n      ...ScheduleFields\n    }\n  }\n": types.SchedulesDocument,
    "\n  mutation CreateSchedule($input: CreateScheduleInput!) {\n    createSchedule(input: $input) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on InvalidInput {\n        fieldErrors {\n          path\n          message\n        }\n      }\n    }\n  }\n": types.CreateScheduleDocument,
    "\n  mutation PauseSchedule($id: ID!) {\n    pauseSchedule(id: $id) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n": types.PauseScheduleDocument,
    "\n  mutation ResumeSchedule($id: ID!) {\n    resumeSchedule(id: $id) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n": types.ResumeScheduleDocument,
    "\n  mutation TriggerSchedule($id: ID!) {\n    triggerSchedule(id: $id) {\n      __typename\n      ... on Job {\n        id\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n": types.TriggerScheduleDocument,
    "\n  mutation DeleteSchedule($id: ID!) {\n    deleteSchedule(id: $id) {\n      __typename\n      ... on UserError {\n        message\n      }\n    }\n  }\n": types.DeleteScheduleDocument,
    "\n  mutation PauseQueue($queue: String!) {\n    pauseQueue(queue: $queue) {\n      __typename\n      ... on QueuePause {\n        queue\n        paused\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n": types.PauseQueueDocument,
    "\n  mutation ResumeQueue($queue: String!) {\n    resumeQueue(queue: $queue) {\n      __typename\n      ... on QueuePause {\n        queue\n        paused\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n": types.ResumeQueueDocument,
    "\n  query WorkflowRuns($after: String) {\n    workflowRuns(first: 50, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          workflow\n          status\n          progress\n          createdAt\n          finishedAt\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": types.WorkflowRunsDocument,
    "\n  query WorkflowRun($id: ID!) {\n    workflowRun(id: $id) {\n      id\n      workflow\n      status\n      progress\n      generation\n      lastSeq\n      input\n      createdAt\n      finishedAt\n      error {\n        type\n        message\n      }\n      steps {\n        id\n        key\n        kind\n        isMap\n        status\n        expected\n        succeeded\n        failed\n        error {\n          type\n          message\n        }\n        job {\n          id\n          status\n        }\n        counts {\n          status\n          count\n        }\n      }\n    }\n    workflows {\n      name\n      edges {\n        from\n        to\n      }\n    }\n  }\n": types.WorkflowRunDocument,
    "\n  query StepJobs($id: ID!, $status: [JobStatus!]) {\n    workflowRun(id: $id) {\n      id\n      steps {\n        id\n        key\n        jobs(status: $status, first: 200) {\n          id\n          status\n          mapIndex\n          attempt\n        }\n      }\n    }\n  }\n": types.StepJobsDocument,
    "\n  subscription WorkflowEvents($runId: ID!, $after: Int) {\n    workflowEvents(runId: $runId, after: $after) {\n      seq\n      type\n      status\n      step\n      stepStatus\n    }\n  }\n": types.WorkflowEventsDocument,
    "\n  mutation CancelWorkflowRun($id: ID!) {\n    cancelWorkflowRun(id: $id) {\n      __typename\n      ... on WorkflowRun {\n        id\n        status\n      }\n      ... on UserError {\n        code\n        message\n      }\n    }\n  }\n": types.CancelWorkflowRunDocument,
    "\n  mutation RetryWorkflowRun($id: ID!) {\n    retryWorkflowRun(id: $id) {\n      __typename\n      ... on WorkflowRun {\n        id\n        status\n      }\n      ... on UserError {\n        code\n        message\n      }\n    }\n  }\n": types.RetryWorkflowRunDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Me {\n    me {\n      id\n      name\n      isAdmin\n      role\n      tenantId\n      isSuperuser\n      tokenScope\n    }\n  }\n"): (typeof documents)["\n  query Me {\n    me {\n      id\n      name\n      isAdmin\n      role\n      tenantId\n      isSuperuser\n      tokenScope\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment JobRow on Job {\n    id\n    kind\n    queue\n    status\n    priority\n    progress\n    progressMessage\n    attempt\n    maxAttempts\n    createdAt\n    runAt\n    nextRunAt\n    startedAt\n    finishedAt\n  }\n"): (typeof documents)["\n  fragment JobRow on Job {\n    id\n    kind\n    queue\n    status\n    priority\n    progress\n    progressMessage\n    attempt\n    maxAttempts\n    createdAt\n    runAt\n    nextRunAt\n    startedAt\n    finishedAt\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Jobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      totalCount(atMost: 10000)\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...JobRow\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query Jobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      totalCount(atMost: 10000)\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...JobRow\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query JobKinds {\n    jobKinds {\n      name\n      queue\n      description\n      inputSchema\n      maxAttempts\n      timeoutSeconds\n    }\n  }\n"): (typeof documents)["\n  query JobKinds {\n    jobKinds {\n      name\n      queue\n      description\n      inputSchema\n      maxAttempts\n      timeoutSeconds\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment JobEventFields on JobEvent {\n    seq\n    type\n    status\n    progress\n    message\n    data\n    at\n  }\n"): (typeof documents)["\n  fragment JobEventFields on JobEvent {\n    seq\n    type\n    status\n    progress\n    message\n    data\n    at\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query JobDetail($id: ID!) {\n    job(id: $id) {\n      ...JobRow\n      payload\n      result\n      error {\n        type\n        message\n      }\n      timeoutSeconds\n      deduplicated\n      queueServed\n      attempts {\n        number\n        status\n        workerId\n        startedAt\n        finishedAt\n        error {\n          type\n          message\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query JobDetail($id: ID!) {\n    job(id: $id) {\n      ...JobRow\n      payload\n      result\n      error {\n        type\n        message\n      }\n      timeoutSeconds\n      deduplicated\n      queueServed\n      attempts {\n        number\n        status\n        workerId\n        startedAt\n        finishedAt\n        error {\n          type\n          message\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query JobEventsHistory($id: ID!, $after: Int!, $first: Int!) {\n    job(id: $id) {\n      id\n      events(after: $after, first: $first) {\n        ...JobEventFields\n      }\n    }\n  }\n"): (typeof documents)["\n  query JobEventsHistory($id: ID!, $after: Int!, $first: Int!) {\n    job(id: $id) {\n      id\n      events(after: $after, first: $first) {\n        ...JobEventFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobEvents($jobId: ID!, $after: Int) {\n    jobEvents(jobId: $jobId, after: $after) {\n      ...JobEventFields\n    }\n  }\n"): (typeof documents)["\n  subscription JobEvents($jobId: ID!, $after: Int) {\n    jobEvents(jobId: $jobId, after: $after) {\n      ...JobEventFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobUpdates($filter: JobFilter) {\n    jobUpdates(filter: $filter) {\n      jobId\n      seq\n      type\n      kind\n      queue\n      status\n      progress\n      progressMessage\n      attempt\n      at\n    }\n  }\n"): (typeof documents)["\n  subscription JobUpdates($filter: JobFilter) {\n    jobUpdates(filter: $filter) {\n      jobId\n      seq\n      type\n      kind\n      queue\n      status\n      progress\n      progressMessage\n      attempt\n      at\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SubmitJob($input: SubmitJobInput!) {\n    submitJob(input: $input) {\n      __typename\n      ... on Job {\n        id\n        status\n        deduplicated\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on InvalidInput {\n        fieldErrors {\n          path\n          message\n        }\n      }\n      ... on UnknownJobKind {\n        kind\n      }\n      ... on Conflict {\n        existingJobId\n      }\n      ... on PolicyDenied {\n        rule\n        retryAfterSeconds\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation SubmitJob($input: SubmitJobInput!) {\n    submitJob(input: $input) {\n      __typename\n      ... on Job {\n        id\n        status\n        deduplicated\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on InvalidInput {\n        fieldErrors {\n          path\n          message\n        }\n      }\n      ... on UnknownJobKind {\n        kind\n      }\n      ... on Conflict {\n        existingJobId\n      }\n      ... on PolicyDenied {\n        rule\n        retryAfterSeconds\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CancelJob($id: ID!) {\n    cancelJob(id: $id) {\n      __typename\n      ... on Job {\n        ...JobRow\n      }\n      ... on UserError {\n        message\n        code\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CancelJob($id: ID!) {\n    cancelJob(id: $id) {\n      __typename\n      ... on Job {\n        ...JobRow\n      }\n      ... on UserError {\n        message\n        code\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RetryJob($id: ID!) {\n    retryJob(id: $id) {\n      __typename\n      ... on Job {\n        ...JobRow\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on PolicyDenied {\n        rule\n        retryAfterSeconds\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation RetryJob($id: ID!) {\n    retryJob(id: $id) {\n      __typename\n      ... on Job {\n        ...JobRow\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on PolicyDenied {\n        rule\n        retryAfterSeconds\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CancelJobs($filter: JobFilter!) {\n    cancelJobs(filter: $filter) {\n      count\n    }\n  }\n"): (typeof documents)["\n  mutation CancelJobs($filter: JobFilter!) {\n    cancelJobs(filter: $filter) {\n      count\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RetryJobs($filter: JobFilter!) {\n    retryJobs(filter: $filter) {\n      count\n    }\n  }\n"): (typeof documents)["\n  mutation RetryJobs($filter: JobFilter!) {\n    retryJobs(filter: $filter) {\n      count\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query FailedJobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      totalCount(atMost: 10000)\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          id\n          kind\n          queue\n          attempt\n          maxAttempts\n          createdAt\n          finishedAt\n          error {\n            type\n            message\n          }\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query FailedJobs($filter: JobFilter, $first: Int, $after: String) {\n    jobs(filter: $filter, first: $first, after: $after) {\n      totalCount(atMost: 10000)\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        node {\n          id\n          kind\n          queue\n          attempt\n          maxAttempts\n          createdAt\n          finishedAt\n          error {\n            type\n            message\n          }\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment QueueStatsFields on QueueStats {\n    queue\n    waiting\n    scheduled\n    running\n    failed\n    oldestWaitingSeconds\n    completedPerMinute\n    failedPerMinute\n    paused\n    pausedBy\n  }\n"): (typeof documents)["\n  fragment QueueStatsFields on QueueStats {\n    queue\n    waiting\n    scheduled\n    running\n    failed\n    oldestWaitingSeconds\n    completedPerMinute\n    failedPerMinute\n    paused\n    pausedBy\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Queues {\n    queues {\n      ...QueueStatsFields\n    }\n  }\n"): (typeof documents)["\n  query Queues {\n    queues {\n      ...QueueStatsFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Workers {\n    workers {\n      id\n      host\n      pid\n      queues\n      concurrency\n      startedAt\n      lastHeartbeatAt\n      runningJobs\n    }\n  }\n"): (typeof documents)["\n  query Workers {\n    workers {\n      id\n      host\n      pid\n      queues\n      concurrency\n      startedAt\n      lastHeartbeatAt\n      runningJobs\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription QueueStats($interval: Float) {\n    queueStats(interval: $interval) {\n      ...QueueStatsFields\n    }\n  }\n"): (typeof documents)["\n  subscription QueueStats($interval: Float) {\n    queueStats(interval: $interval) {\n      ...QueueStatsFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AuditLog($filter: AuditLogFilter, $first: Int!, $after: String) {\n    auditLog(filter: $filter, first: $first, after: $after) {\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          id\n          at\n          actorId\n          actorName\n          action\n          target\n          before\n          after\n          requestId\n          clientAddress\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query AuditLog($filter: AuditLogFilter, $first: Int!, $after: String) {\n    auditLog(filter: $filter, first: $first, after: $after) {\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          id\n          at\n          actorId\n          actorName\n          action\n          target\n          before\n          after\n          requestId\n          clientAddress\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query PolicyDecisions($filter: PolicyDecisionFilter, $first: Int!, $after: String) {\n    policyDecisions(filter: $filter, first: $first, after: $after) {\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          id\n          at\n          principalId\n          principalName\n          action\n          jobKind\n          jobId\n          decision\n          rule\n          reason\n          policyVersion\n          requestId\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query PolicyDecisions($filter: PolicyDecisionFilter, $first: Int!, $after: String) {\n    policyDecisions(filter: $filter, first: $first, after: $after) {\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          id\n          at\n          principalId\n          principalName\n          action\n          jobKind\n          jobId\n          decision\n          rule\n          reason\n          policyVersion\n          requestId\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query JobWaitingReason($id: ID!) {\n    job(id: $id) {\n      id\n      status\n      scheduleId\n      fireAt\n      waitingReason {\n        code\n        message\n        until\n        scope\n        limit\n        running\n        holders\n        ahead\n        aheadExact\n      }\n    }\n  }\n"): (typeof documents)["\n  query JobWaitingReason($id: ID!) {\n    job(id: $id) {\n      id\n      status\n      scheduleId\n      fireAt\n      waitingReason {\n        code\n        message\n        until\n        scope\n        limit\n        running\n        holders\n        ahead\n        aheadExact\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment ScheduleFields on Schedule {\n    id\n    name\n    kind\n    input\n    cron\n    everySeconds\n    timezone\n    misfire\n    source\n    paused\n    pausedAt\n    pausedBy\n    nextFireAt\n    lastFireAt\n    skippedFires\n    nextFireTimes(count: 3)\n    recentFires {\n      fireAt\n      lagSeconds\n      manual\n      jobId\n      jobStatus\n      error\n    }\n  }\n"): (typeof documents)["\n  fragment ScheduleFields on Schedule {\n    id\n    name\n    kind\n    input\n    cron\n    everySeconds\n    timezone\n    misfire\n    source\n    paused\n    pausedAt\n    pausedBy\n    nextFireAt\n    lastFireAt\n    skippedFires\n    nextFireTimes(count: 3)\n    recentFires {\n      fireAt\n      lagSeconds\n      manual\n      jobId\n      jobStatus\n      error\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Schedules {\n    schedules {\n      ...ScheduleFields\n    }\n  }\n"): (typeof documents)["\n  query Schedules {\n    schedules {\n      ...ScheduleFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateSchedule($input: CreateScheduleInput!) {\n    createSchedule(input: $input) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on InvalidInput {\n        fieldErrors {\n          path\n          message\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CreateSchedule($input: CreateScheduleInput!) {\n    createSchedule(input: $input) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n        code\n      }\n      ... on InvalidInput {\n        fieldErrors {\n          path\n          message\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation PauseSchedule($id: ID!) {\n    pauseSchedule(id: $id) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation PauseSchedule($id: ID!) {\n    pauseSchedule(id: $id) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ResumeSchedule($id: ID!) {\n    resumeSchedule(id: $id) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation ResumeSchedule($id: ID!) {\n    resumeSchedule(id: $id) {\n      __typename\n      ... on Schedule {\n        ...ScheduleFields\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation TriggerSchedule($id: ID!) {\n    triggerSchedule(id: $id) {\n      __typename\n      ... on Job {\n        id\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation TriggerSchedule($id: ID!) {\n    triggerSchedule(id: $id) {\n      __typename\n      ... on Job {\n        id\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeleteSchedule($id: ID!) {\n    deleteSchedule(id: $id) {\n      __typename\n      ... on UserError {\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation DeleteSchedule($id: ID!) {\n    deleteSchedule(id: $id) {\n      __typename\n      ... on UserError {\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation PauseQueue($queue: String!) {\n    pauseQueue(queue: $queue) {\n      __typename\n      ... on QueuePause {\n        queue\n        paused\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation PauseQueue($queue: String!) {\n    pauseQueue(queue: $queue) {\n      __typename\n      ... on QueuePause {\n        queue\n        paused\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ResumeQueue($queue: String!) {\n    resumeQueue(queue: $queue) {\n      __typename\n      ... on QueuePause {\n        queue\n        paused\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation ResumeQueue($queue: String!) {\n    resumeQueue(queue: $queue) {\n      __typename\n      ... on QueuePause {\n        queue\n        paused\n      }\n      ... on UserError {\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query WorkflowRuns($after: String) {\n    workflowRuns(first: 50, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          workflow\n          status\n          progress\n          createdAt\n          finishedAt\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n"): (typeof documents)["\n  query WorkflowRuns($after: String) {\n    workflowRuns(first: 50, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          workflow\n          status\n          progress\n          createdAt\n          finishedAt\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query WorkflowRun($id: ID!) {\n    workflowRun(id: $id) {\n      id\n      workflow\n      status\n      progress\n      generation\n      lastSeq\n      input\n      createdAt\n      finishedAt\n      error {\n        type\n        message\n      }\n      steps {\n        id\n        key\n        kind\n        isMap\n        status\n        expected\n        succeeded\n        failed\n        error {\n          type\n          message\n        }\n        job {\n          id\n          status\n        }\n        counts {\n          status\n          count\n        }\n      }\n    }\n    workflows {\n      name\n      edges {\n        from\n        to\n      }\n    }\n  }\n"): (typeof documents)["\n  query WorkflowRun($id: ID!) {\n    workflowRun(id: $id) {\n      id\n      workflow\n      status\n      progress\n      generation\n      lastSeq\n      input\n      createdAt\n      finishedAt\n      error {\n        type\n        message\n      }\n      steps {\n        id\n        key\n        kind\n        isMap\n        status\n        expected\n        succeeded\n        failed\n        error {\n          type\n          message\n        }\n        job {\n          id\n          status\n        }\n        counts {\n          status\n          count\n        }\n      }\n    }\n    workflows {\n      name\n      edges {\n        from\n        to\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query StepJobs($id: ID!, $status: [JobStatus!]) {\n    workflowRun(id: $id) {\n      id\n      steps {\n        id\n        key\n        jobs(status: $status, first: 200) {\n          id\n          status\n          mapIndex\n          attempt\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query StepJobs($id: ID!, $status: [JobStatus!]) {\n    workflowRun(id: $id) {\n      id\n      steps {\n        id\n        key\n        jobs(status: $status, first: 200) {\n          id\n          status\n          mapIndex\n          attempt\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription WorkflowEvents($runId: ID!, $after: Int) {\n    workflowEvents(runId: $runId, after: $after) {\n      seq\n      type\n      status\n      step\n      stepStatus\n    }\n  }\n"): (typeof documents)["\n  subscription WorkflowEvents($runId: ID!, $after: Int) {\n    workflowEvents(runId: $runId, after: $after) {\n      seq\n      type\n      status\n      step\n      stepStatus\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CancelWorkflowRun($id: ID!) {\n    cancelWorkflowRun(id: $id) {\n      __typename\n      ... on WorkflowRun {\n        id\n        status\n      }\n      ... on UserError {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CancelWorkflowRun($id: ID!) {\n    cancelWorkflowRun(id: $id) {\n      __typename\n      ... on WorkflowRun {\n        id\n        status\n      }\n      ... on UserError {\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RetryWorkflowRun($id: ID!) {\n    retryWorkflowRun(id: $id) {\n      __typename\n      ... on WorkflowRun {\n        id\n        status\n      }\n      ... on UserError {\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation RetryWorkflowRun($id: ID!) {\n    retryWorkflowRun(id: $id) {\n      __typename\n      ... on WorkflowRun {\n        id\n        status\n      }\n      ... on UserError {\n        code\n        message\n      }\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;